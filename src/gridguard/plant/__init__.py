"""Plant physics of a site (one gateway meter and its devices) and scenarios as data; pure.

Rulings: none owned.
"""
