"""The MQTT wire protocol of the streaming_overdemand strategy: topics, messages, codec.

Pure: imports only pydantic and the standard library. Everything that crosses MQTT becomes a
pydantic model here and nowhere else.

Rulings:
    D1   topics                         topics.py
    D2   envelope                       models.py
    D4   lenient JSON                   codec.py
    D6   payload size                   codec.py
"""
