"""The slow lanes share the edge tests' broker fixtures."""

from tests.edge.conftest import own_mosquitto

__all__ = ["own_mosquitto"]
