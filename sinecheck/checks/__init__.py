"""The checks: environment factors, the determinism matrix, first divergence, golden baselines, benchmarks."""
