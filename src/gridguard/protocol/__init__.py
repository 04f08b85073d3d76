"""The MQTT wire protocol of the streaming_overdemand strategy: topics, messages, codec.

Pure: imports only pydantic and the standard library. Everything that crosses MQTT becomes a
pydantic model here and nowhere else.
"""
