"""Benchmarks callable from `stemlink bench` (each module measures one thing and returns a dict)."""
