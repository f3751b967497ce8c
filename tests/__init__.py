"""The test suite (a package, so `tests.<folder>.<module>` always names these files)."""
