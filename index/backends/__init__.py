"""Engines that store and search chunks behind `HybridIndex`: `local` (FAISS + BM25 + SQLite files, the
default) and `milvus` (a milvus-lite file or a Milvus server). See `base.SearchBackend` for the contract."""
