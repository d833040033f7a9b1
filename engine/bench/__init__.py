"""Benchmarks, soak runs and the naive peer: they measure the engine and are not part of it."""
