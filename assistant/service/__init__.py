"""The resident assistant (`ra service`): a per-user process that keeps the model, the checker and the
indexes warm, and the thin client `ra ask`, `ra chat`, `ra search` and the web app reach it through."""
