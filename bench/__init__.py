"""Benchmarks for dualres: ``python -m bench`` (see docs/benchmarks.md)."""
