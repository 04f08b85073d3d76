"""What every wire field means, with its unit: the text of the JSON Schemas' descriptions.

Keyed by field name, or ``Model.field`` where one name means different things in different
objects (``id`` of a strategy, of a meter, of a device). ``docs/field-reference.md`` says the
same at length; a test keeps every field of every schema described.
"""

from __future__ import annotations

from typing import NamedTuple


class FieldDoc(NamedTuple):
    description: str
    unit: str | None = None


_STATUS = "1 enabled, 2 disabled"
_CONNECTION = "from the EMS's site configuration (reported, ignored on input)"

FIELDS: dict[str, FieldDoc] = {
    # envelope and result
    "mid": FieldDoc("Message id, a UUID; a result's own mid is fresh, its reply is the command's"),
    "type": FieldDoc("streaming_overdemand_{op}: must match the op of the topic it is sent on"),
    "device_uid": FieldDoc("The EMS's device UID: a command for another EMS is refused"),
    "timestamp": FieldDoc(
        "When the message was made, milliseconds since 1970-01-01 UTC, > 0", "ms"
    ),
    "trace_id": FieldDoc("Optional caller's trace id; echoed on the result when given"),
    "reply": FieldDoc("The mid of the command this result answers"),
    "code": FieldDoc("200 done, 400 the command is wrong (msg says why), 500 the EMS failed"),
    "msg": FieldDoc("Empty on 200; else the field path and the rule broken, '; '-joined"),
    "data": FieldDoc("The message's content (see the message's schema)"),
    "IdData.id": FieldDoc("A strategy id, assigned by the EMS, positive, never reused"),
    # strategy
    "id": FieldDoc("Strategy id, assigned by the EMS on create, positive, never reused"),
    "device_type": FieldDoc("Device class the strategy drives: 2 storage, 3 PV, 4 charging pile"),
    "devices": FieldDoc("Every device of that class behind the meter, " + _CONNECTION),
    "ele_meter_id": FieldDoc("Id of the gateway meter the strategy protects (site configuration)"),
    "ele_meter": FieldDoc("That meter as configured (reported, ignored on input)"),
    "streaming_status": FieldDoc("Anti-backflow: " + _STATUS),
    "streaming_condition": FieldDoc(
        "Anti-backflow baseline: grid import kept at or above this, integer >= 0", "kW"
    ),
    "individual_phase_streaming_status": FieldDoc("Single-phase anti-backflow: " + _STATUS),
    "individual_phase_streaming_condition": FieldDoc(
        "Per-phase baseline: every phase's import kept at or above this, integer >= 0", "kW"
    ),
    "over_demand_status": FieldDoc("Over-demand (demand limit): " + _STATUS),
    "over_demand_condition": FieldDoc(
        "Demand limit per calendar month, 12 integers >= 0, January first", "kW"
    ),
    "current_over_demand_condition": FieldDoc(
        "This month's entry of over_demand_condition, in the site's time zone (reported)", "kW"
    ),
    "dynamic_demand_status": FieldDoc("Dynamic demand: " + _STATUS + "; default 2"),
    "dynamic_demand": FieldDoc(
        "Highest 15-minute demand at the meter this month, integer (reported)", "kW"
    ),
    "dynamic_demand_percentage": FieldDoc(
        "Shaving starts at this share of the limit, a number in (0, 100]", "%"
    ),
    "updated_by": FieldDoc("Who changed the strategy last; 'mqtt' when not given"),
    "created_at": FieldDoc("When it was created, UTC RFC 3339 (reported)"),
    "updated_at": FieldDoc("When it was changed last, UTC RFC 3339 (reported)"),
    # meter and devices (reported from the site configuration)
    "EleMeter.id": FieldDoc("Meter id in the site configuration"),
    "EleDeviceType.id": FieldDoc("Meter model id"),
    "EleDeviceType.name": FieldDoc("Meter model name"),
    "EmsDevice.id": FieldDoc("Device id in the site configuration"),
    "Photovoltaic.id": FieldDoc("Device id in the site configuration"),
    "Pail.id": FieldDoc("Device id in the site configuration"),
    "EmsDevice.type": FieldDoc("Storage model"),
    "name": FieldDoc("Display name"),
    "station_name": FieldDoc("Station (site) the meter belongs to"),
    "site_name": FieldDoc("Site the device belongs to"),
    "uid": FieldDoc("The meter's or device's own UID"),
    "ele_device_type_id": FieldDoc("Meter model id"),
    "ele_device_type": FieldDoc("Meter model"),
    "direction": FieldDoc("1 mounted normally, -1 mounted reversed (readings negated)"),
    "pt": FieldDoc("Voltage transformer ratio (primary / secondary), integer >= 1"),
    "ct": FieldDoc("Current transformer ratio (primary / secondary), integer >= 1"),
    "rate": FieldDoc("Meter multiplier, pt x ct"),
    "purpose": FieldDoc("1 gateway meter (at the grid connection), 2 sub-meter"),
    "meter_ids": FieldDoc("Associated meters' ids, when any"),
    "associate_meters": FieldDoc("Associated meters, when any"),
    "proto_type": FieldDoc("Link: 1 TCP, 2 serial (RTU)"),
    "proto_id": FieldDoc("Application protocol: 1 DL/T 645, 2 Modbus"),
    "slave_id": FieldDoc("Modbus unit (slave) id, 0..247"),
    "host": FieldDoc("TCP host of the device or its gateway"),
    "port": FieldDoc("TCP port"),
    "com_addr": FieldDoc("Serial port (RTU), e.g. /dev/ttyS1"),
    "com_no": FieldDoc("Serial port number"),
    "baud_rate": FieldDoc("Serial speed", "bit/s"),
    "data_bits": FieldDoc("Serial data bits, 7 or 8"),
    "stop_bits": FieldDoc("Serial stop bits, 1 or 2"),
    "parity": FieldDoc("Serial parity: N none, E even, O odd"),
    "running_status": FieldDoc("1 the EMS reaches it, 2 it does not answer (offline), 3 fault"),
    "location": FieldDoc("Where the storage system stands"),
    "longitude": FieldDoc("Longitude", "degree"),
    "latitude": FieldDoc("Latitude", "degree"),
    "statistics_port": FieldDoc("Statistics port (as the platform records it)"),
    "cooling_method": FieldDoc("Cooling method code (as the platform records it)"),
    "level": FieldDoc("Level (as the platform records it)"),
    "charges": FieldDoc("Tariff data (as the platform records it)"),
    "pcs_reboot": FieldDoc("PCS reboot flag (as the platform records it)"),
    "bms_reboot": FieldDoc("BMS reboot flag (as the platform records it)"),
    "license": FieldDoc("Licence (as the platform records it)"),
    "rated_power": FieldDoc("Rated AC power", "kW"),
    "min_power": FieldDoc("Charging pile: lowest power before it is paused instead", "kW"),
    "priority": FieldDoc("Charging pile: higher is throttled later"),
}


def field_doc(model: str, field: str) -> FieldDoc | None:
    """The description of ``field`` in ``model`` (its own entry first, then the name's)."""
    return FIELDS.get(f"{model}.{field}") or FIELDS.get(field)
