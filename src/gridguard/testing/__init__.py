"""Helpers for tests, benchmarks and the demo: real services on loopback, owned by the caller."""
