"""Runs in worker processes with a controlled environment (process-wide switches never leak between runs)."""
