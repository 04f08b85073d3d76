"""The site simulator: plant models behind Modbus TCP servers, on loopback only.

Rulings: none owned.
"""
