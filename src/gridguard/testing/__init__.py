"""Helpers for tests, benchmarks and the demo: real services on loopback, owned by the caller.

Rulings: none owned; :mod:`.rulings` reads this index, :mod:`.graph` draws the layers.
"""
