"""The site configuration file (TOML): identity, broker, store, meters and devices.

Rulings: none owned; the file holds the settings that several rulings name (D1, D5, D6,
D13, D14, D17, D20, D21).
"""
