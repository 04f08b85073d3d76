"""MQTT session settings shared by the edge agent and the SDK: URL, TLS, TCP_NODELAY, delivery.

Rulings: none owned; QoS 1 and the stable client id of D5 are set here (D5: ``edge/service.py``).
"""
