"""Modbus: register maps as data, the pure register codec, links, and thin drivers per device.

Rulings: none owned.
"""
