"""Tests of the benchmark suite (benchmarks/run.py)."""
