"""The closed-loop lab: GridGuard against a proportional baseline and the LP optimum.

Rulings: none owned.
"""
