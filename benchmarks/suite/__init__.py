"""The benchmark suite behind benchmarks/run.py: workloads, namespaces, report, plots."""
