"""``gridguard demo``: an embedded broker, the simulated site and the edge agent in one command.

Rulings: none owned.
"""
