"""Throughput and memory benchmarks; run as scripts, not part of the test suite."""
