"""The benchmarks: management commands that measure the console on a real stack and print
figures (docs/benchmarks.md). They live beside the product, not in it: the wheel leaves
this package out, settings list it as an app only in a checkout, and no product module
imports it (an import contract in pyproject.toml)."""
