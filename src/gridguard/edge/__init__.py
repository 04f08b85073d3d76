"""The EMS edge agent: serves the strategy protocol over MQTT, keeps it durable, runs control.

``service.py`` answers commands, ``report.py`` builds the reported strategies, ``agent.py``
runs the session, reports and control loop in one task group, ``run.py`` starts it all.

Rulings:
    D3   result codes and messages      service.py
    D5   delivery and idempotency       service.py
    D12  sync                           service.py
    D13  list/post                      report.py
"""
