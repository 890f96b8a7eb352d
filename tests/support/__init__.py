"""Shared test support: ``servers`` (real-server fixtures, a pytest plugin) and ``builders`` (test data)."""
