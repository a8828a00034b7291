"""Inspect solvers used by the warmeval tasks."""
