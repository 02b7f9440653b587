"""Benchmarks run as scripts: python -m eval.bench.<name>."""
