"""The embedded MQTT broker (amqtt) for the zero-setup default: bound to 127.0.0.1 only.

Production sites use their own broker (Mosquitto, EMQX, ...); this one exists so that
``gridguard demo`` and the tests run with nothing installed but Python.
"""

from __future__ import annotations

import logging
from typing import Any, Self

from amqtt.broker import Broker

LOOPBACK = "127.0.0.1"


def broker_config(port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{LOOPBACK}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


class EmbeddedBroker:
    """``async with EmbeddedBroker(port):`` runs an amqtt broker on 127.0.0.1:port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._broker: Any = None

    async def __aenter__(self) -> Self:
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._broker = Broker(broker_config(self.port))
        await self._broker.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
