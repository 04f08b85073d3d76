"""The embedded MQTT broker (amqtt) for the zero-setup default: bound to 127.0.0.1 only.

Production sites use their own broker (Mosquitto, EMQX, ...); this one exists so that
``gridguard demo`` and the tests run with nothing installed but Python. :class:`EmbeddedBroker`
runs it in the caller's event loop (the tests); :class:`BrokerProcess` in a child process
(``python -m gridguard.demo.broker PORT``, the demo, beside its fleet).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any, Self

from amqtt.broker import Broker

LOOPBACK = "127.0.0.1"


def broker_config(port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{LOOPBACK}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


class _Broker(Broker):  # type: ignore[misc] # amqtt is untyped
    """amqtt 0.12's broker, sending retained messages only for the session's own filters.

    On every connect amqtt 0.12 calls ``_publish_retained_messages_for_subscription`` for every
    filter of *every* client, so each new client received every retained message that any
    client's filter matches (a fleet device got all the fleet's list/post), a connect cost
    filters x retained messages, and while it awaited those sends another connect changed the
    filter table under its loop ("dictionary changed size during iteration", connection
    dropped). Here a filter that is not the session's own is skipped without awaiting: the
    retained messages a client gets are those its subscriptions match, as MQTT says."""

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Any
    ) -> None:
        subscribers = self._subscriptions.get(subscription[0], ())
        if any(s.client_id == session.client_id for s, _ in subscribers):
            await super()._publish_retained_messages_for_subscription(subscription, session)


class EmbeddedBroker:
    """``async with EmbeddedBroker(port):`` runs an amqtt broker on 127.0.0.1:port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._broker: Any = None

    async def __aenter__(self) -> Self:
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._broker = _Broker(broker_config(self.port))
        await self._broker.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None


READY = "broker ready"
STOP_WAIT_S = 10.0


async def serve_until_eof(port: int) -> None:
    """Run the broker until stdin ends (the demo closed it, or the demo died) or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the demo decides when the broker stops
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with EmbeddedBroker(port):
        sys.stdout.write(f"{READY}\n")
        sys.stdout.flush()
        eof = asyncio.ensure_future(reader.read())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({eof, stopped}, return_when=asyncio.FIRST_COMPLETED)
        eof.cancel()
        stopped.cancel()


class BrokerProcess:
    """``async with BrokerProcess(port):`` runs :class:`EmbeddedBroker` in a child process.

    amqtt matches every message against every subscription (five per simulated device), so
    a fleet of a few hundred keeps it busy; in a process of its own that work never delays the
    edge agent's Modbus cycle. The child is in a session of its own (a Ctrl-C in the terminal
    reaches only the demo, which stops the broker last) and ends when its stdin closes, so it
    also ends when the demo dies."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Self:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gridguard.demo.broker",
            str(self.port),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        assert self._process.stdout is not None
        try:
            line = await asyncio.wait_for(self._process.stdout.readline(), 60)
        except TimeoutError:
            line = b""
        if line.decode().strip() != READY:
            await self.__aexit__()
            raise BrokerStartError(f"the embedded broker did not start on 127.0.0.1:{self.port}")
        return self

    async def __aexit__(self, *_: object) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), STOP_WAIT_S)
        except TimeoutError:
            process.kill()
            await process.wait()


class BrokerStartError(RuntimeError):
    """The broker's child process ended, or said nothing, before it was ready."""


def main() -> None:
    """``python -m gridguard.demo.broker PORT`` (what :class:`BrokerProcess` starts)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(serve_until_eof(int(sys.argv[1])))


if __name__ == "__main__":
    main()
