"""Field devices: capabilities as Protocols, in-process fakes, the Modbus drivers of a site.

Rulings: none owned; drivers clamp setpoints (D20) and report a silent device offline (D21).
"""
