"""Modbus links: one connection per endpoint, one channel per device, failures counted.

Error tree (every failure a driver sees is a :class:`LinkError`)::

    LinkError                   the request did not produce registers
    ├── LinkDownError                no connection (refused, timed out, backing off, no pyserial)
    └── DeviceRefusedError           the device answered with a Modbus exception (wrong map?)

* :class:`Connection` owns one pymodbus client for a TCP endpoint or a serial port. Devices that
  share an endpoint (an RS-485 line, a TCP gateway: 12 to 125 meters behind one) share it, one
  request on the wire at a time. When it cannot connect, or the transport fails, it backs off:
  the next attempt waits ``backoff_initial_s``, doubling per failure up to ``backoff_max_s``;
  until then requests fail at once instead of waiting for a timeout. pymodbus's own reconnect
  loop is switched off, so time is ours (injected ``clock``).
* :class:`Channel` is one device (slave id) on a connection: per-call timeout, immediate
  retries (``ModbusLink.retries``), and the count of consecutive failures behind ``online``.

A device that does not answer is that device's failure, never the connection's: its timeout
counts from the moment its request is sent (not while it waits for the line), the shared
connection stays up for the others, and the device itself backs off (its requests fail at once
until its next try, doubling from ``backoff_initial_s`` up to ``backoff_max_s``), so a
dead unit costs the line one timeout per backoff instead of one per read. A late answer that
arrives during a later request is told apart by its transaction id (TCP) or unit id (RTU) and
that request is asked again. Only a transport error (connection refused, reset, closed) drops
the connection for everyone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from gridguard.clock import MonotonicClock, SystemClock
from gridguard.devices.modbus.regmap import Function
from gridguard.site.config import ModbusLink

log = logging.getLogger(__name__)

ModbusClient = AsyncModbusTcpClient | AsyncModbusSerialClient
PYMODBUS_TIMEOUT_SLACK_S = 1.0
"""pymodbus's own response timeout is ours plus this: ours always fires first, so pymodbus never
counts "no response" towards closing the shared connection itself."""


class LinkError(Exception):
    """A Modbus request did not produce a good answer."""


class LinkDownError(LinkError):
    """No connection to the endpoint (refused, timed out, backing off, or no serial support)."""


class DeviceRefusedError(LinkError):
    """The device answered with a Modbus exception response."""


def quiet_pymodbus() -> None:
    """Silence pymodbus's own log: it writes every failed connect and retry (14 lines per
    retry while a device is offline), where the channels write one line per change of state
    (offline, online). Left alone when its level was set, or when the root logs debug."""
    logger = logging.getLogger("pymodbus")
    if logger.level == logging.NOTSET and not logging.getLogger().isEnabledFor(logging.DEBUG):
        logger.setLevel(logging.CRITICAL)


def endpoint_key(link: ModbusLink) -> str:
    """Devices with the same key share one connection."""
    if link.transport == "rtu":
        return f"rtu:{link.serial_port}"
    return f"tcp:{link.host}:{link.port}"


def _new_client(link: ModbusLink) -> ModbusClient:
    # reconnect_delay=0: pymodbus must not reconnect behind our back; retries are ours too.
    if link.transport == "rtu":
        try:
            return AsyncModbusSerialClient(
                link.serial_port,
                framer=FramerType.RTU,
                baudrate=link.baud_rate,
                bytesize=link.data_bits,
                parity=link.parity,
                stopbits=link.stop_bits,
                timeout=link.timeout_s + PYMODBUS_TIMEOUT_SLACK_S,
                retries=0,
                reconnect_delay=0,
            )
        except RuntimeError as exc:  # pymodbus raises this when pyserial is missing
            raise LinkDownError(f"{link.serial_port}: serial support unavailable: {exc}") from exc
    return AsyncModbusTcpClient(
        link.host,
        port=link.port,
        timeout=link.timeout_s + PYMODBUS_TIMEOUT_SLACK_S,
        retries=0,
        reconnect_delay=0,
    )


class Connection:
    """One pymodbus client for one endpoint, connected on demand with backoff."""

    def __init__(
        self,
        link: ModbusLink,
        *,
        clock: MonotonicClock | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
    ) -> None:
        quiet_pymodbus()
        self.link = link
        self.name = endpoint_key(link)
        self._clock = clock or SystemClock()
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._client: ModbusClient | None = None
        self._failures = 0
        self._next_attempt_s = float("-inf")
        self._connect_lock = asyncio.Lock()
        self.line = asyncio.Lock()
        """Held while a request is on the wire: one at a time per endpoint (as pymodbus and an
        RS-485 line do anyway), taken before its timeout starts."""
        self.connects = 0
        """Connections made so far (a shared connection that is never dropped stays at 1)."""

    @property
    def clock(self) -> MonotonicClock:
        return self._clock

    @property
    def backoff_initial_s(self) -> float:
        return self._backoff_initial_s

    @property
    def backoff_max_s(self) -> float:
        return self._backoff_max_s

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    async def client(self) -> ModbusClient:
        """The connected client; raises LinkDownError while backing off or when connecting fails."""
        async with self._connect_lock:
            if self._client is not None and self._client.connected:
                return self._client
            now = self._clock.monotonic_s()
            if now < self._next_attempt_s:
                raise LinkDownError(f"{self.name}: reconnect in {self._next_attempt_s - now:.1f} s")
            self.drop()
            client = _new_client(self.link)
            try:
                ok = await asyncio.wait_for(client.connect(), self.link.timeout_s)
            except (TimeoutError, OSError, ModbusException):
                ok = False
            if not ok:
                client.close()
                self.failed()
                raise LinkDownError(f"{self.name}: cannot connect")
            self._client = client
            self.connects += 1
            return client

    def failed(self) -> None:
        """Transport failed: drop the client and wait before the next attempt (doubling)."""
        self.drop()
        self._failures += 1
        doublings = min(self._failures - 1, 32)  # capped: 2**n must stay a float
        delay_s = min(self._backoff_max_s, self._backoff_initial_s * 2.0**doublings)
        self._next_attempt_s = self._clock.monotonic_s() + delay_s

    def answered(self) -> None:
        """A request succeeded: the next failure starts the backoff afresh."""
        self._failures = 0
        self._next_attempt_s = float("-inf")

    def drop(self) -> None:
        """Close the client (a transport error; a device's timeout never closes it)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def close(self) -> None:
        self.drop()


class Channel:
    """One device (slave id) on a connection, with timeout, retries and failure count."""

    def __init__(self, connection: Connection, link: ModbusLink) -> None:
        self.connection = connection
        self.device_id = link.slave_id
        self.timeout_s = link.timeout_s
        self.retries = link.retries
        self.consecutive_failures = 0
        self.last_error = ""
        self._ever_ok = False
        self._silent = 0
        """Requests in a row this device left unanswered (its own backoff, not the line's)."""
        self._next_try_s = float("-inf")

    @property
    def online(self) -> bool:
        """True after the last request succeeded."""
        return self._ever_ok and self.consecutive_failures == 0

    async def read(self, function: Function, address: int, count: int) -> list[int]:
        """Read ``count`` registers; raises LinkError."""

        async def call(client: ModbusClient) -> ModbusPDU:
            if function == "input":
                return await client.read_input_registers(
                    address, count=count, device_id=self.device_id
                )
            return await client.read_holding_registers(
                address, count=count, device_id=self.device_id
            )

        response = await self._request(call, f"read {function} {address:#06x}+{count}")
        registers = list(response.registers)
        if len(registers) != count:
            self.record_failure(f"short answer: {len(registers)} of {count} registers")
            raise DeviceRefusedError(self.last_error)
        return registers

    async def write(self, address: int, values: Sequence[int]) -> None:
        """Write holding registers (function 16, or 06 for one register); raises LinkError."""

        async def call(client: ModbusClient) -> ModbusPDU:
            if len(values) == 1:
                return await client.write_register(address, values[0], device_id=self.device_id)
            return await client.write_registers(address, list(values), device_id=self.device_id)

        await self._request(call, f"write {address:#06x}={list(values)}")

    async def _request(
        self, call: Callable[[ModbusClient], Awaitable[ModbusPDU]], what: str
    ) -> ModbusPDU:
        self._check_backoff(what)
        transport_failed = stale_seen = False
        attempts = self.retries + 1
        while attempts > 0:
            attempts -= 1
            async with self.connection.line:  # the timeout starts once the line is ours
                try:
                    client = await self.connection.client()
                except LinkDownError as exc:
                    self.record_failure(str(exc))
                    raise
                try:
                    async with asyncio.timeout(self.timeout_s):  # no task per request
                        response = await call(client)
                except TimeoutError:  # this device's silence: the connection stays up
                    self.last_error = f"{what}: no answer within {self.timeout_s} s"
                    continue
                except ModbusIOException as exc:  # a late answer to an earlier request:
                    self.last_error = f"{what}: {type(exc).__name__}: {exc}"
                    if not stale_seen:  # ask again, once, without using up a retry
                        stale_seen, attempts = True, attempts + 1
                    continue
                except (ModbusException, OSError) as exc:  # the transport: everyone's
                    self.connection.drop()
                    transport_failed = True
                    self.last_error = f"{what}: {type(exc).__name__}: {exc}"
                    continue
            return self._answered(response, what)
        if transport_failed:
            self.connection.failed()
        else:
            self._back_off()
        self.record_failure(self.last_error or f"{what}: no answer")
        raise LinkDownError(self.last_error)

    def _check_backoff(self, what: str) -> None:
        """LinkDownError at once while this device is backing off."""
        now_s = self.connection.clock.monotonic_s()
        if now_s < self._next_try_s:
            error = f"{what}: silent, next try in {self._next_try_s - now_s:.1f} s"
            self.record_failure(self.last_error or error)
            raise LinkDownError(error)

    def _answered(self, response: ModbusPDU, what: str) -> ModbusPDU:
        self.connection.answered()
        self._silent, self._next_try_s = 0, float("-inf")
        if response.isError():
            self.record_failure(f"{what}: exception response {response}")
            raise DeviceRefusedError(self.last_error)
        if self.consecutive_failures or not self._ever_ok:
            log.info("modbus %s id %d: online", self.connection.name, self.device_id)
        self.consecutive_failures = 0
        self._ever_ok = True
        return response

    def _back_off(self) -> None:
        """This device did not answer: its next request waits (doubling, capped)."""
        self._silent += 1
        doublings = min(self._silent - 1, 32)
        connection = self.connection
        delay_s = min(connection.backoff_max_s, connection.backoff_initial_s * 2.0**doublings)
        self._next_try_s = self.connection.clock.monotonic_s() + delay_s

    def record_failure(self, error: str) -> None:
        if self.consecutive_failures == 0:
            log.warning("modbus %s id %d: offline: %s", self.connection.name, self.device_id, error)
        self.consecutive_failures += 1
        self.last_error = error
