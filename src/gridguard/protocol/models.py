"""Message models for every message of the protocol, and the envelope they share (D2).

Naming: ``XCommand`` is what the platform publishes on ``.../{op}/command`` and the EMS
receives; ``XResult`` is the EMS's answer on ``.../{op}/result``; ``ListPost`` is the report on
``.../list/post``. Required fields follow the protocol's later revision; ranges and
defaults follow D14. Unknown keys are ignored on input (forward compatibility), never echoed.

Device shapes: the spec shows ``emsDevice`` in full; ``photovoltaic`` and ``pail`` are named
but never shown, so GridGuard gives them the same connection fields as ``emsDevice`` plus their
ratings in kW (``rated_power``; piles also ``min_power`` and ``priority``) — see docs/protocol.md.
Every command carries the :class:`Envelope` (D2); rulings are defined in docs/rulings.md.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from gridguard.protocol.fields import (
    DeviceType,
    Kw,
    MonthlyKw,
    NonEmptyStr,
    Percentage,
    PositiveId,
    Status,
    TimestampMs,
    Uuid,
    WireTime,
)
from gridguard.vocab import DeviceClass, Switch

ENABLED, DISABLED = Switch.ENABLED, Switch.DISABLED
STORAGE, PV, CHARGER = DeviceClass.STORAGE, DeviceClass.PV, DeviceClass.CHARGER


class WireModel(BaseModel):
    """Base of every wire model: ignore unknown keys, accept field names and aliases."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Connection(WireModel):
    """Connection fields shared by meters and devices in this EMS family."""

    id: int = 0
    proto_type: int = Field(default=1, description="1 TCP, 2 RTU")
    proto_id: int = Field(default=0, description="application protocol (1 DL/T645, 2 Modbus)")
    slave_id: int = 0
    host: str = ""
    port: int = 0
    com_addr: str = ""
    com_no: int = 0
    baud_rate: int = 0
    data_bits: int = 0
    stop_bits: int = 0
    parity: str = ""
    uid: str = ""
    running_status: int = Field(default=1, description="1 online/running, 2 offline, 3 fault")


class EleDeviceType(WireModel):
    id: int = 0
    name: str = ""


class EleMeter(_Connection):
    """The gateway meter a strategy binds (``ele_meter``; the table's ``elemeter`` is a typo)."""

    station_name: str = ""
    name: str = ""
    ele_device_type_id: int = 0
    ele_device_type: EleDeviceType = Field(
        default_factory=EleDeviceType,
        validation_alias=AliasChoices("ele_device_type", "elec_device_type"),
    )
    direction: int = Field(default=1, description="1 normal, -1 mounted reversed")
    pt: int = 1
    ct: int = 1
    purpose: int = Field(default=1, description="1 gateway meter 关口表, 2 sub-meter 计量表")
    rate: int | None = Field(default=None, description="倍率 (PT x CT) when known")
    meter_ids: list[int] | None = None
    associate_meters: list[Any] | None = None


class _DeviceCommon(_Connection):
    name: str = ""
    site_name: str = ""
    created_at: WireTime | None = None
    updated_at: WireTime | None = None


class EmsDevice(_DeviceCommon):
    """A storage system (``emsDevice`` of the spec)."""

    location: str = ""
    longitude: float = 0.0
    latitude: float = 0.0
    statistics_port: int = 0
    cooling_method: int = 0
    level: int = 1
    charges: Any = None
    pcs_reboot: int = 0
    bms_reboot: int = 0
    license: str = ""
    type: str = ""


class Photovoltaic(_DeviceCommon):
    """A PV inverter (``photovoltaic``): GridGuard's shape, the spec names but never shows it."""

    rated_power: float = Field(default=0.0, description="rated AC power, kW")


class Pail(_DeviceCommon):
    """A charging pile (``pail``): GridGuard's shape, the spec names but never shows it."""

    rated_power: float = Field(default=0.0, description="rated power, kW")
    min_power: float = Field(default=0.0, description="lowest power before pausing, kW")
    priority: int = Field(default=1, description="higher = throttled later")


AnyDevice = EmsDevice | Photovoltaic | Pail
_DEVICE_CLASS: dict[int, type[WireModel]] = {STORAGE: EmsDevice, PV: Photovoltaic, CHARGER: Pail}


class StreamingOverDemand(WireModel):
    """One strategy, fully populated, as the EMS reports it (list/post, sync/result)."""

    id: PositiveId
    device_type: DeviceType = STORAGE
    devices: list[AnyDevice] = Field(default_factory=list)
    ele_meter_id: PositiveId
    ele_meter: EleMeter = Field(
        default_factory=EleMeter, validation_alias=AliasChoices("ele_meter", "elemeter")
    )
    streaming_status: Status
    streaming_condition: Kw = 0
    individual_phase_streaming_status: Status = DISABLED
    individual_phase_streaming_condition: Kw = 0
    over_demand_status: Status
    over_demand_condition: MonthlyKw
    current_over_demand_condition: Kw = 0
    dynamic_demand_status: Status = DISABLED
    dynamic_demand: Kw = 0
    dynamic_demand_percentage: Percentage
    updated_by: str = ""
    created_at: WireTime
    updated_at: WireTime

    @model_validator(mode="before")
    @classmethod
    def _devices_by_type(cls, raw: Any) -> Any:
        """Parse ``devices`` with the shape of the strategy's device class."""
        if not isinstance(raw, dict) or not isinstance(raw.get("devices"), list):
            return raw
        device_class = _DEVICE_CLASS.get(raw.get("device_type", STORAGE), EmsDevice)
        devices = [
            device_class.model_validate(d) if isinstance(d, dict) else d for d in raw["devices"]
        ]
        return {**raw, "devices": devices}


class StrategyFields(WireModel):
    """The caller-settable fields of a strategy, all optional (update merges, D9).

    Server-owned fields (``id`` aside, which update uses to find the strategy) are not declared,
    so they are ignored on input (D8).
    """

    device_type: DeviceType | None = None
    ele_meter_id: PositiveId | None = None
    streaming_status: Status | None = None
    streaming_condition: Kw | None = None
    individual_phase_streaming_status: Status | None = None
    individual_phase_streaming_condition: Kw | None = None
    over_demand_status: Status | None = None
    over_demand_condition: MonthlyKw | None = None
    dynamic_demand_status: Status | None = None
    dynamic_demand_percentage: Percentage | None = None
    updated_by: str | None = None


class StrategyCreate(StrategyFields):
    """``data`` of a create command (D8): required fields as in the source spec."""

    REQUIRED: ClassVar[tuple[str, ...]] = (
        "ele_meter_id",
        "streaming_status",
        "individual_phase_streaming_status",
        "over_demand_status",
        "over_demand_condition",
        "dynamic_demand_percentage",
    )
    ele_meter_id: PositiveId
    streaming_status: Status
    individual_phase_streaming_status: Status
    over_demand_status: Status
    over_demand_condition: MonthlyKw
    dynamic_demand_percentage: Percentage


class StrategyUpdate(StrategyFields):
    """``data`` of an update command (D9): ``id`` plus any fields to replace."""

    id: PositiveId


class StrategyItem(StrategyFields):
    """One item of update_all (D11): matched by ``id`` if given, else by meter and class."""

    id: PositiveId | None = None


class IdData(WireModel):
    id: PositiveId


# --- envelopes --------------------------------------------------------------------------


class Envelope(WireModel):
    """Fields every message carries (D2)."""

    mid: Uuid
    type: NonEmptyStr
    device_uid: NonEmptyStr
    timestamp: TimestampMs
    trace_id: str | None = None


class SyncCommand(Envelope):
    """sync/command: everything but the envelope is ignored (D12)."""


class CreateCommand(Envelope):
    data: StrategyCreate


class UpdateCommand(Envelope):
    data: StrategyUpdate


class DeleteCommand(Envelope):
    data: IdData


class UpdateAllCommand(Envelope):
    data: list[StrategyItem]


class Result(Envelope):
    """Base of every ``{op}/result`` (D3): ``reply`` is the command's mid."""

    reply: str = ""
    code: Literal[200, 400, 500] = 200
    msg: str = ""


class SyncResult(Result):
    data: list[StreamingOverDemand] = Field(default_factory=list)


class CreateResult(Result):
    data: IdData | None = None


class UpdateResult(Result):
    pass


class DeleteResult(Result):
    pass


class UpdateAllResult(Result):
    data: list[IdData] | None = None


class ListPost(Envelope):
    data: list[StreamingOverDemand]


COMMAND_MODELS: dict[str, type[Envelope]] = {
    "sync": SyncCommand,
    "create": CreateCommand,
    "update": UpdateCommand,
    "delete": DeleteCommand,
    "update_all": UpdateAllCommand,
}
RESULT_MODELS: dict[str, type[Result]] = {
    "sync": SyncResult,
    "create": CreateResult,
    "update": UpdateResult,
    "delete": DeleteResult,
    "update_all": UpdateAllResult,
}


def message_type(op: str) -> str:
    """The ``type`` of every message on op's topics (D2): ``streaming_overdemand_{op}``."""
    return f"streaming_overdemand_{op}"
