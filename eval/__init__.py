"""Evaluation: retrieval metrics, answer faithfulness and benchmarks."""
