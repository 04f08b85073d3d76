"""The platform: the fleet side of the strategy protocol (REST API over MQTT commands).

One process holds a device registry, an audited command round trip (every REST mutation is
one MQTT command; the HTTP answer is the EMS's), users and API tokens. It talks to EMSs over
MQTT only and never imports the edge agent.

Rulings: none owned; it sends commands shaped by D1-D14 and reads their answers (docs/platform.md).
"""
