"""The simulator's Modbus TCP servers: each device's register map, served on loopback.

* :class:`RegisterBank` is one device's register image, read and written by point name with the
  same codec the drivers use (pure, no I/O). The simulator puts the plant's state into it every
  step; a client's write to a ``rw`` point lands in it and is reported through ``on_write``.
* :class:`EndpointServer` serves the banks of every device configured on one host:port (one
  unit id each) over Modbus TCP as a device answers (:mod:`.modbus_tcp`: exception codes,
  pipelined requests, zeros between mapped registers). It can be stopped and restarted on the
  same port, or muted (connections accepted, requests never answered), so tests can kill a
  device and watch the agent mark it offline and back online (D21). It binds loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from gridguard.devices.modbus.codec import decode_point, encode_point
from gridguard.devices.modbus.regmap import Function, RegisterMap, WordOrder, load_map
from gridguard.sim import modbus_tcp
from gridguard.site.config import (
    ChargerConfig,
    MeterConfig,
    ModbusLink,
    PvConfig,
    SiteConfig,
    StorageConfig,
)

_WithLink = TypeVar("_WithLink", MeterConfig, StorageConfig, PvConfig, ChargerConfig)

WriteHook = Callable[[str, float], None]
"""Called with (point name, new engineering value) after a client wrote a ``rw`` point."""


class SimulatorError(Exception):
    """The simulator cannot serve this configuration (e.g. a host that is not loopback)."""


def loopback_host(host: str) -> str:
    """The address to bind for a configured host; refuses anything that is not loopback."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise SimulatorError(f"host {host!r}: the simulator serves on loopback only (127.0.0.1, ::1)")


class RegisterBank:
    """One device's registers, addressed by point name (holding and input tables)."""

    def __init__(self, regmap: RegisterMap, word_order: WordOrder | None = None) -> None:
        self.regmap = regmap
        self.word_order: WordOrder = word_order or regmap.word_order
        self.tables: dict[Function, dict[int, int]] = {"holding": {}, "input": {}}
        self._writable: set[int] = set()
        for point in regmap.points.values():
            for address in range(point.address, point.address + point.words):
                self.tables[point.function][address] = 0
                if point.function == "holding" and point.access == "rw":
                    self._writable.add(address)

    def set(self, name: str, value: float) -> None:
        """Encode an engineering value into the point's registers (clamped by the codec)."""
        point = self.regmap.points[name]
        registers = encode_point(point, value, self.word_order)
        table = self.tables[point.function]
        for offset, register in enumerate(registers):
            table[point.address + offset] = register

    def get(self, name: str) -> float:
        point = self.regmap.points[name]
        table = self.tables[point.function]
        registers = [table[point.address + i] for i in range(point.words)]
        return decode_point(point, registers, self.word_order)

    def read(self, function: Function, address: int, count: int) -> list[int]:
        """Registers from ``address``; those the map does not name read 0 (as on a meter)."""
        table = self.tables[function]
        return [table.get(address + i, 0) for i in range(count)]

    def writable(self, address: int, count: int) -> bool:
        """Whether every register of the block belongs to a writable holding point."""
        return all(address + i in self._writable for i in range(count))

    def write(self, address: int, values: Sequence[int]) -> list[str]:
        """Store holding registers; the names of the writable points they touched."""
        table = self.tables["holding"]
        for offset, value in enumerate(values):
            table[address + offset] = value
        end = address + len(values)
        return [
            p.name
            for p in self.regmap.points.values()
            if p.function == "holding"
            and p.access == "rw"
            and p.address < end
            and address < p.address + p.words
        ]


@dataclass
class ServedDevice:
    """A device served on an endpoint: its id, register bank and write hook."""

    device_id: int
    bank: RegisterBank
    on_write: WriteHook | None = None


class EndpointServer:
    """A Modbus TCP server on one loopback host:port, serving one or more devices."""

    def __init__(self, host: str, port: int, devices: Sequence[ServedDevice]) -> None:
        self.host = loopback_host(host)
        self.port = port
        self.devices = {d.device_id: d for d in devices}
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[object]] = set()
        self._unmuted = asyncio.Event()
        self._unmuted.set()
        self._silent: set[int] = set()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def muted(self) -> bool:
        return not self._unmuted.is_set()

    def mute(self, muted: bool) -> None:
        """Muted: connections are accepted but no request is answered (a hung device)."""
        if muted:
            self._unmuted.clear()
        else:
            self._unmuted.set()

    def silence(self, unit_id: int, silent: bool = True) -> None:
        """A silent unit's requests are read and never answered; the endpoint's other units
        answer as before (one hung device behind a shared gateway)."""
        if silent:
            self._silent.add(unit_id)
        else:
            self._silent.discard(unit_id)

    def _answer(self, frame: modbus_tcp.Frame) -> bytes:
        served = self.devices.get(frame.unit_id)
        if served is None:
            pdu = modbus_tcp.exception_pdu(frame.pdu[0], modbus_tcp.GATEWAY_TARGET_FAILED)
        else:
            pdu, written = modbus_tcp.answer(served.bank, frame.pdu)
            for name in written:
                if served.on_write is not None:
                    served.on_write(name, served.bank.get(name))
        return modbus_tcp.Frame(frame.transaction_id, frame.unit_id, pdu).encode()

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Answer one client's requests in order, however they are split into segments."""
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = b""
        try:
            while data := await reader.read(4096):
                frames, pending = modbus_tcp.split_frames(pending + data)
                for frame in frames:
                    await self._unmuted.wait()
                    if frame.unit_id not in self._silent:
                        writer.write(self._answer(frame))
                await writer.drain()
        except (modbus_tcp.FrameError, ConnectionError):
            pass  # not Modbus, or the client went away: hang up
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()

    async def start(self) -> None:
        """Listen (again) on the endpoint; with port 0 the first start picks a free port."""
        if self._server is not None:
            return
        try:
            server = await asyncio.start_server(self._serve_client, self.host, self.port)
        except OSError as exc:
            raise SimulatorError(f"{self.host}:{self.port}: cannot listen: {exc.strerror}") from exc
        self._server = server
        if self.port == 0:
            self.port = int(server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and drop every client connection (a dead device); clears a mute."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            clients, self._clients = list(self._clients), set()
            for task in clients:
                task.cancel()
            for task in clients:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await server.wait_closed()
        self._unmuted.set()  # a restarted device answers

    async def restart(self) -> None:
        await self.stop()
        await self.start()


SECTIONS = ("meters", "storage", "pv", "chargers")
"""SiteConfig sections with Modbus devices; a device is keyed (section, id)."""
DeviceKey = tuple[str, int]


def _configured(site: SiteConfig) -> list[tuple[DeviceKey, ModbusLink, str, WordOrder | None]]:
    out: list[tuple[DeviceKey, ModbusLink, str, WordOrder | None]] = [
        (("meters", m.id), m.modbus, m.type, m.word_order) for m in site.meters
    ]
    for section in SECTIONS[1:]:
        devices: list[StorageConfig | PvConfig | ChargerConfig] = getattr(site, section)
        out.extend(((section, d.id), d.modbus, d.model, None) for d in devices)
    return out


class SiteServers:
    """Every endpoint of a site configuration, with one register bank per meter and device.

    Devices configured on the same host:port share one server (one device id each); port 0
    gives a device its own free port, and :meth:`bound` returns the configuration with the
    ports actually used, for drivers and tests.
    """

    def __init__(self, site: SiteConfig, maps_dir: Path | None = None) -> None:
        self.site = site
        self.devices: dict[DeviceKey, ServedDevice] = {}
        groups: dict[object, list[tuple[DeviceKey, ModbusLink]]] = {}
        for key, link, model, word_order in _configured(site):
            if link.transport != "tcp":
                raise SimulatorError(f"{key[0]} id {key[1]}: the simulator serves TCP only")
            bank = RegisterBank(load_map(model, maps_dir or site.site.maps_dir), word_order)
            self.devices[key] = ServedDevice(link.slave_id, bank)
            group = (loopback_host(link.host), link.port) if link.port else key
            groups.setdefault(group, []).append((key, link))
        self.endpoints: dict[DeviceKey, EndpointServer] = {}
        self.servers: list[EndpointServer] = []
        for members in groups.values():
            link = members[0][1]
            if len({m.slave_id for _, m in members}) != len(members):
                raise SimulatorError(f"{link.host}:{link.port}: two devices with one slave_id")
            server = EndpointServer(link.host, link.port, [self.devices[k] for k, _ in members])
            self.servers.append(server)
            self.endpoints.update(dict.fromkeys((k for k, _ in members), server))
        for meter in site.meters:
            bank = self.devices["meters", meter.id].bank
            for name, ratio in (("pt", meter.pt), ("ct", meter.ct)):
                if name in bank.regmap.points:
                    bank.set(name, ratio)

    def bank(self, section: str, device_id: int) -> RegisterBank:
        return self.devices[section, device_id].bank

    async def start(self) -> None:
        for server in self.servers:
            await server.start()

    async def stop(self) -> None:
        for server in self.servers:
            await server.stop()

    def bound(self) -> SiteConfig:
        """The site configuration with every port as actually bound (after :meth:`start`)."""

        def rebind(section: str, dev: _WithLink) -> _WithLink:
            port = self.endpoints[section, dev.id].port
            return dev.model_copy(update={"modbus": dev.modbus.model_copy(update={"port": port})})

        update = {s: [rebind(s, d) for d in getattr(self.site, s)] for s in SECTIONS}
        return self.site.model_copy(update=update)

    def describe(self) -> list[str]:
        """One line per served device: what is served where."""
        lines = []
        for (section, dev_id), served in self.devices.items():
            server = self.endpoints[section, dev_id]
            state = "up" if server.running else "down"
            lines.append(
                f"{served.bank.regmap.kind} {dev_id}: modbus tcp {server.host}:{server.port} "
                f"unit {served.device_id} ({state})"
            )
        return lines
