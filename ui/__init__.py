"""The Streamlit app (`ra ui`): chat with cited answers and live sources, uploads, and the evaluation page.

Layering: ui imports assistant and index, never eval; the evaluation page runs `ra eval qa` as a process.
"""
