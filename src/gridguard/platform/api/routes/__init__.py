"""The REST routes, one module per resource.

Rulings: none owned.
"""
