"""Document ingestion and the hybrid (FAISS + BM25) index.

This package never imports `assistant`, `ui` or `eval`: it is the bottom layer.
"""
