"""Strategy -> the fully populated wire object of list/post and sync/result (D7, D13, D14).

The EMS fills what the caller never sets: ``ele_meter`` from the site's meter configuration,
``devices`` = every device of the strategy's class behind that meter, with ``running_status``
from the live driver state, ``current_over_demand_condition`` for this month in the site's
time zone, and ``dynamic_demand`` from the control engine's demand meter (D18).

:class:`WireReport` builds the ``data`` of list/post and sync at a cost that does not grow with
the site on every report: each strategy's encoded wire object is kept until the strategy or one
of its live values (its meter's and devices' running_status, its meter's dynamic demand, the
month) changes, and the meter and device objects are kept per running_status, so a report
re-encodes only what changed and joins the rest as bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from gridguard.protocol.models import (
    AnyDevice,
    EleDeviceType,
    EleMeter,
    EmsDevice,
    Pail,
    Photovoltaic,
    StreamingOverDemand,
)
from gridguard.site.config import (
    ChargerConfig,
    MeterConfig,
    ModbusLink,
    PvConfig,
    SiteConfig,
    StorageConfig,
)
from gridguard.site.topology import MeterBranch
from gridguard.strategy.model import Strategy, month_condition, site_month
from gridguard.vocab import DeviceClass, DeviceKind, RunningStatus

ONLINE, OFFLINE = RunningStatus.ONLINE, RunningStatus.OFFLINE


def _link_fields(link: ModbusLink) -> dict[str, object]:
    rtu = link.transport == "rtu"
    return {
        "proto_type": 2 if rtu else 1,
        "proto_id": 2,  # application protocol: Modbus
        "slave_id": link.slave_id,
        "host": "" if rtu else link.host,
        "port": 0 if rtu else link.port,
        "com_addr": link.serial_port if rtu else "",
        "baud_rate": link.baud_rate if rtu else 0,
        "data_bits": link.data_bits if rtu else 0,
        "stop_bits": link.stop_bits if rtu else 0,
        "parity": link.parity if rtu else "",
    }


def ele_meter(meter: MeterConfig, online: bool) -> EleMeter:
    """The ``ele_meter`` object for a configured meter."""
    return EleMeter.model_validate(
        {
            "id": meter.id,
            **_link_fields(meter.modbus),
            "uid": meter.uid,
            "station_name": meter.station_name,
            "name": meter.name,
            "ele_device_type_id": meter.type_id,
            "ele_device_type": EleDeviceType(id=meter.type_id, name=meter.type),
            "running_status": ONLINE if online else OFFLINE,
            "direction": meter.direction,
            "pt": meter.pt,
            "ct": meter.ct,
            "rate": meter.pt * meter.ct,
            "purpose": meter.purpose,
        }
    )


OnlineFn = Callable[[str, int], bool]
"""(device class: "meter" | "storage" | "pv" | "charger", id) -> online?"""


_SHAPES: dict[DeviceKind, type[EmsDevice | Photovoltaic | Pail]] = {
    "storage": EmsDevice,
    "pv": Photovoltaic,
    "charger": Pail,
}


_KINDS: dict[int, DeviceKind] = {c.value: c.kind for c in DeviceClass}


def _kind(device_type: int) -> DeviceKind | None:
    return _KINDS.get(device_type)


def device_object(
    site: SiteConfig, kind: DeviceKind, dev: StorageConfig | PvConfig | ChargerConfig, online: bool
) -> AnyDevice:
    """One device of a strategy's ``devices`` (D7), with its running_status."""
    return _SHAPES[kind].model_validate(
        {
            "site_name": site.device.site_name,
            **_link_fields(dev.modbus),
            **_ratings(dev),
            "id": dev.id,
            "uid": dev.uid,
            "name": dev.name,
            "running_status": ONLINE if online else OFFLINE,
        }
    )


def _devices(site: SiteConfig, strategy: Strategy, online: OnlineFn) -> list[AnyDevice]:
    """Every device of the strategy's class behind its meter (D7), with live running_status."""
    branch = site.topology.branch(strategy.ele_meter_id)
    kind = _kind(strategy.device_type)
    if branch is None or kind is None:
        return []
    return [device_object(site, kind, dev, online(kind, dev.id)) for dev in branch.of(kind)]


def _ratings(dev: StorageConfig | PvConfig | ChargerConfig) -> dict[str, object]:
    """The PV and pile shapes carry their ratings (docs/protocol.md); emsDevice has none."""
    if isinstance(dev, ChargerConfig):
        return {"rated_power": dev.rated_kw, "min_power": dev.min_kw, "priority": dev.priority}
    if isinstance(dev, PvConfig):
        return {"rated_power": dev.rated_kw}
    return {}


def to_wire(
    strategy: Strategy,
    *,
    site: SiteConfig,
    now: datetime,
    dynamic_demand_kw: Mapping[int, int],
    online: OnlineFn,
) -> StreamingOverDemand:
    """One strategy as list/post reports it, fully populated (D13)."""
    meter = site.meter(strategy.ele_meter_id)
    meter_obj = ele_meter(meter, online("meter", meter.id)) if meter else EleMeter()
    return wire_object(
        strategy,
        devices=_devices(site, strategy, online),
        meter=meter_obj,
        month_kw=strategy.current_over_demand_condition(now, site.site.time_zone),
        dynamic_demand_kw=dynamic_demand_kw.get(strategy.ele_meter_id, 0),
    )


def wire_object(
    strategy: Strategy,
    *,
    devices: list[AnyDevice],
    meter: EleMeter,
    month_kw: int,
    dynamic_demand_kw: int,
) -> StreamingOverDemand:
    """A strategy's wire object from its parts (the derived fields already computed)."""
    return StreamingOverDemand(
        id=strategy.id,
        device_type=strategy.device_type,
        devices=devices,
        ele_meter_id=strategy.ele_meter_id,
        ele_meter=meter,
        streaming_status=strategy.streaming_status,
        streaming_condition=strategy.streaming_condition,
        individual_phase_streaming_status=strategy.individual_phase_streaming_status,
        individual_phase_streaming_condition=strategy.individual_phase_streaming_condition,
        over_demand_status=strategy.over_demand_status,
        over_demand_condition=list(strategy.over_demand_condition),
        current_over_demand_condition=month_kw,
        dynamic_demand_status=strategy.dynamic_demand_status,
        dynamic_demand=dynamic_demand_kw,
        dynamic_demand_percentage=strategy.dynamic_demand_percentage,
        updated_by=strategy.updated_by,
        created_at=strategy.created_at,
        updated_at=strategy.updated_at,
    )


LiveKey = tuple[int, int, bool, tuple[bool, ...]]
"""What a strategy's wire object depends on besides the strategy: (month, dynamic demand,
meter online, its devices online)."""


@dataclass(frozen=True, slots=True)
class LiveValues:
    """What a report reads of the live state, and the revision it was read at (see
    ``LiveView.revision``; None: no revision, every live value is looked at)."""

    now: datetime
    dynamic_demand_kw: Mapping[int, int]
    online: OnlineFn
    revision: object = None


@dataclass(frozen=True, slots=True)
class _Cached:
    strategy: Strategy
    live: LiveKey
    encoded: bytes


DevicesOf = Mapping[tuple[int, int], tuple[DeviceKind, tuple[int, ...]]]
"""(meter, device_type) -> the class and ids of the devices a strategy there lists (D7)."""


def devices_of(site: SiteConfig) -> DevicesOf:
    """Computed once per site from its topology."""
    return {
        (branch.meter_id, device_class.value): (
            device_class.kind,
            tuple(dev.id for dev in branch.of(device_class.kind)),
        )
        for branch in site.topology
        for device_class in DeviceClass
    }


class _Live:
    """The live values of one report, each looked up once per meter or branch."""

    def __init__(
        self, month: int, demand: Mapping[int, int], online: OnlineFn, devices: DevicesOf
    ) -> None:
        self.month = month
        self._demand = demand
        self._online = online
        self._devices = devices
        self._meters: dict[int, bool] = {}
        self._branches: dict[tuple[int, int], tuple[bool, ...]] = {}

    def key(self, strategy: Strategy) -> LiveKey:
        meter_id = strategy.ele_meter_id
        devices_key = (meter_id, strategy.device_type)
        devices_up = self._branches.get(devices_key)
        if devices_up is None:
            kind, ids = self._devices.get(devices_key, ("storage", ()))
            devices_up = self._branches[devices_key] = tuple(
                [self._online(kind, device_id) for device_id in ids]
            )
        meter_up = self._meters.get(meter_id)
        if meter_up is None:
            known = (meter_id, DeviceClass.STORAGE.value) in self._devices
            meter_up = self._meters[meter_id] = known and self._online("meter", meter_id)
        return (self.month, self._demand.get(meter_id, 0), meter_up, devices_up)


class WireReport:
    """Encoded wire objects of strategies, each kept until it or its live values change.

    ``encoded(strategies, ...)`` gives the JSON of each strategy's object in id order, exactly
    as the strategy's model encodes (``splice_data`` puts them into a message); the site's
    objects are found through its :class:`SiteTopology` index, never by scanning lists."""

    def __init__(self, site: SiteConfig) -> None:
        self._site = site
        self._zone = ZoneInfo(site.site.time_zone)
        self._strategies: dict[int, _Cached] = {}
        self._meters: dict[tuple[int, bool], EleMeter] = {}
        self._devices: dict[tuple[DeviceKind, int, bool], AnyDevice] = {}
        self._devices_of = devices_of(site)
        self._last_live: tuple[object, _Live] | None = None
        self._seen: tuple[object, int] | None = None
        """(live revision, month) of the last report: while both hold, a cached object whose
        strategy is the very same object is current without looking at any live value."""

    def _live(self, values: LiveValues) -> _Live:
        """The report's live values; the same lookups for as long as the revision holds."""
        month = site_month(values.now, self._zone)
        last = self._last_live
        if (
            values.revision is not None
            and last is not None
            and last[0] is values.revision
            and last[1].month == month
        ):
            return last[1]
        live = _Live(month, values.dynamic_demand_kw, values.online, self._devices_of)
        self._last_live = (values.revision, live)
        return live

    def stale(self, strategies: Mapping[int, Strategy], values: LiveValues) -> list[int]:
        """The ids, in order, whose encoded object would have to be made anew."""
        live = self._live(values)
        same = self._same(values.revision, live.month)
        return [
            k
            for k in sorted(strategies)
            if not (same and self._unchanged(strategies[k]))
            and self._cached(strategies[k], live) is None
        ]

    def _same(self, revision: object, month: int) -> bool:
        return (
            revision is not None
            and self._seen is not None
            and self._seen[0] is revision
            and self._seen[1] == month
        )

    def _unchanged(self, strategy: Strategy) -> bool:
        cached = self._strategies.get(strategy.id)
        return cached is not None and cached.strategy is strategy

    def encoded(
        self,
        strategies: Mapping[int, Strategy],
        values: LiveValues,
        ids: Iterable[int] | None = None,
    ) -> list[bytes]:
        """Each strategy's encoded object, in id order (only ``ids`` when given)."""
        live = self._live(values)
        wanted = sorted(strategies) if ids is None else ids
        cache = self._strategies
        if self._same(values.revision, live.month):
            out = [
                cache[k].encoded
                if k in cache and cache[k].strategy is strategies[k]
                else self._one(strategies[k], live)
                for k in wanted
            ]
        else:
            out = [self._one(strategies[k], live) for k in wanted]
            if ids is None:  # every object is now current for this revision
                self._seen = (values.revision, live.month)
        if ids is None and len(self._strategies) > len(strategies):  # forget deleted ones
            for gone in self._strategies.keys() - strategies.keys():
                del self._strategies[gone]
        return out

    def _cached(self, strategy: Strategy, live: _Live) -> bytes | None:
        cached = self._strategies.get(strategy.id)
        if cached is None or cached.live != live.key(strategy):
            return None
        if cached.strategy is not strategy and cached.strategy != strategy:
            return None
        return cached.encoded

    def _one(self, strategy: Strategy, live: _Live) -> bytes:
        encoded = self._cached(strategy, live)
        if encoded is not None:
            return encoded
        key = live.key(strategy)
        branch = self._site.topology.branch(strategy.ele_meter_id)
        obj = wire_object(
            strategy,
            devices=self._device_objects(branch, strategy.device_type, key[3]),
            meter=self._meter_object(branch, key[2]),
            month_kw=month_condition(strategy.over_demand_condition, live.month),
            dynamic_demand_kw=key[1],
        )
        encoded = obj.model_dump_json(exclude_none=True).encode("utf-8")
        self._strategies[strategy.id] = _Cached(strategy, key, encoded)
        return encoded

    def _meter_object(self, branch: MeterBranch | None, online: bool) -> EleMeter:
        if branch is None:
            return EleMeter()
        key = (branch.meter_id, online)
        if key not in self._meters:
            self._meters[key] = ele_meter(branch.meter, online)
        return self._meters[key]

    def _device_objects(
        self, branch: MeterBranch | None, device_type: int, online: tuple[bool, ...]
    ) -> list[AnyDevice]:
        kind = _kind(device_type)
        if branch is None or kind is None:
            return []
        out = []
        for dev, up in zip(branch.of(kind), online, strict=True):
            key = (kind, dev.id, up)
            if key not in self._devices:
                self._devices[key] = device_object(self._site, kind, dev, up)
            out.append(self._devices[key])
        return out


DATA_SLOT = b'"data":[]'
"""How an empty ``data`` list encodes; it cannot occur inside a JSON string (quotes there are
escaped), so in an encoded message it is the ``data`` key itself."""


def splice_data(message: bytes, items: list[bytes]) -> bytes:
    """``message`` (encoded with ``data: []``) with its data list holding ``items``."""
    at = message.index(DATA_SLOT) + len(DATA_SLOT) - 1
    return b"".join((message[:at], b",".join(items), message[at:]))
