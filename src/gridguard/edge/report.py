"""Strategy -> the fully populated wire object of list/post and sync/result (D7, D13, D14).

The EMS fills what the caller never sets: ``ele_meter`` from the site's meter configuration,
``devices`` = every device of the strategy's class behind that meter, with ``running_status``
from the live driver state, ``current_over_demand_condition`` for this month in the site's
time zone, and ``dynamic_demand`` from the control engine's demand meter (D18).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

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
from gridguard.strategy.model import Strategy
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


def _devices(site: SiteConfig, strategy: Strategy, online: OnlineFn) -> list[AnyDevice]:
    """Every device of the strategy's class behind its meter (D7), with live running_status."""
    branch = site.topology.branch(strategy.ele_meter_id)
    try:
        kind = DeviceClass(strategy.device_type).kind
    except ValueError:
        return []
    if branch is None:
        return []
    shape = _SHAPES[kind]
    common = {"site_name": site.device.site_name}
    return [
        shape.model_validate(
            {
                **common,
                **_link_fields(dev.modbus),
                **_ratings(dev),
                "id": dev.id,
                "uid": dev.uid,
                "name": dev.name,
                "running_status": ONLINE if online(kind, dev.id) else OFFLINE,
            }
        )
        for dev in branch.of(kind)
    ]


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
    return StreamingOverDemand(
        id=strategy.id,
        device_type=strategy.device_type,
        devices=_devices(site, strategy, online),
        ele_meter_id=strategy.ele_meter_id,
        ele_meter=meter_obj,
        streaming_status=strategy.streaming_status,
        streaming_condition=strategy.streaming_condition,
        individual_phase_streaming_status=strategy.individual_phase_streaming_status,
        individual_phase_streaming_condition=strategy.individual_phase_streaming_condition,
        over_demand_status=strategy.over_demand_status,
        over_demand_condition=list(strategy.over_demand_condition),
        current_over_demand_condition=strategy.current_over_demand_condition(
            now, site.site.time_zone
        ),
        dynamic_demand_status=strategy.dynamic_demand_status,
        dynamic_demand=dynamic_demand_kw.get(strategy.ele_meter_id, 0),
        dynamic_demand_percentage=strategy.dynamic_demand_percentage,
        updated_by=strategy.updated_by,
        created_at=strategy.created_at,
        updated_at=strategy.updated_at,
    )
