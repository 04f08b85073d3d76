"""The site simulator (plant models behind Modbus TCP servers, on loopback only) and the fleet
simulator (N simulated EMS serving the strategy protocol over MQTT, ``fleet*.py``).

Rulings: none owned (the fleet applies D2-D13 through ``protocol`` and ``strategy``).
"""
