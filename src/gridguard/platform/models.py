"""The REST API's model families: ``XCreate`` (POST body), ``XUpdate`` (PATCH), ``XPublic``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from gridguard.platform.alarms import AlarmKind, Severity
from gridguard.platform.security import Role
from gridguard.protocol.models import StrategyCreate, StreamingOverDemand
from gridguard.protocol.topics import SchemeName, TopicScheme, check_device_uid

T = TypeVar("T")
CommandState = Literal["pending", "succeeded", "rejected", "failed", "timed_out"]


def check_time_zone(value: str) -> str:
    """An IANA time zone name, e.g. ``Asia/Shanghai``."""
    try:
        ZoneInfo(value)
    except (ValueError, ZoneInfoNotFoundError):
        raise ValueError(
            f"must be an IANA time zone such as Asia/Shanghai, got {value!r}"
        ) from None
    return value


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="matching rows over all pages")
    offset: int
    limit: int


class ErrorPublic(BaseModel):
    """Every error body: ``detail`` is readable; ``mid`` names the command when there is one."""

    detail: str
    mid: str | None = None
    code: int | None = Field(default=None, description="the EMS's code, when it answered")


# --- devices ------------------------------------------------------------------------------


class DeviceCreate(ApiModel):
    uid: str = Field(min_length=1, max_length=200, description="the EMS's device UID")
    scheme: SchemeName
    product_key: str = Field(default="", description="scheme wudun: v1/wudun/{product_key}")
    tenant: str = Field(default="", description="scheme user: v1/user/{tenant}")
    prefix: str = Field(default="", description="scheme custom: any topic prefix")
    display_name: str = Field(default="", max_length=200)
    site_name: str = Field(default="", max_length=200)
    time_zone: str = Field(default="Asia/Shanghai", max_length=64)
    report_interval_s: float = Field(
        default=300.0, gt=0, le=86_400, description="the EMS's list/post period"
    )

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_time_zone(value)

    @field_validator("uid")
    @classmethod
    def _uid(cls, value: str) -> str:
        check_device_uid(value)
        return value

    @model_validator(mode="after")
    def _scheme_parameter(self) -> DeviceCreate:
        self.topic_scheme()  # TopicError (a ValueError) names the missing or bad parameter
        return self

    def topic_scheme(self) -> TopicScheme:
        return TopicScheme(
            self.scheme, product_key=self.product_key, tenant=self.tenant, prefix=self.prefix
        )


class DeviceUpdate(ApiModel):
    display_name: str | None = Field(default=None, max_length=200)
    site_name: str | None = Field(default=None, max_length=200)
    time_zone: str | None = Field(default=None, max_length=64)
    report_interval_s: float | None = Field(default=None, gt=0, le=86_400)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else check_time_zone(value)


class DriftPublic(BaseModel):
    in_drift: bool
    missing: list[int] = Field(description="desired ids the EMS no longer reports")
    extra: list[int] = Field(description="reported ids the operator never applied")
    changed: dict[int, list[str]] = Field(description="id -> fields that differ")


class DevicePublic(BaseModel):
    uid: str
    scheme: SchemeName
    product_key: str
    tenant: str
    prefix: str
    topic_prefix: str
    display_name: str
    site_name: str
    time_zone: str
    report_interval_s: float
    online: bool
    created_at: datetime
    last_seen_at: datetime | None
    last_list_at: datetime | None
    last_status_at: datetime | None
    strategy_count: int
    desired_at: datetime | None
    desired_by: str | None
    drift: DriftPublic | None = Field(description="None until an operator applied a set")


class DeviceDetail(DevicePublic):
    last_status: dict[str, Any] | None
    reported: list[StreamingOverDemand]


# --- commands -----------------------------------------------------------------------------


class CommandPublic(BaseModel):
    mid: str
    device_uid: str
    op: str
    purpose: str
    request: Any
    user_name: str
    token_id: int | None
    state: CommandState
    code: int | None
    msg: str | None
    data: Any
    sent_at: datetime
    answered_at: datetime | None
    latency_ms: float | None
    retries: int
    late: bool = Field(description="answered after the HTTP request had timed out")


class CommandAnswer(BaseModel):
    """What a mutation returns on success: the EMS's data and the command's mid."""

    mid: str
    code: int
    msg: str
    data: Any = None


# --- users and tokens ---------------------------------------------------------------------


class UserCreate(ApiModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: SecretStr = Field(min_length=8)
    role: Role = Role.VIEWER


class UserUpdate(ApiModel):
    password: SecretStr | None = Field(default=None, min_length=8)
    role: Role | None = None


class UserPublic(BaseModel):
    id: int
    name: str
    role: Role
    created_at: datetime


class LoginRequest(ApiModel):
    name: str = Field(min_length=1, max_length=100)
    password: SecretStr


class TokenCreate(ApiModel):
    name: str = Field(min_length=1, max_length=100, description="what the token is for")


class TokenPublic(BaseModel):
    id: int
    user_id: int
    name: str
    hint: str = Field(description="the token's first characters")
    created_at: datetime
    revoked_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="shown once; only its hash is stored")


# --- fleet --------------------------------------------------------------------------------


class DeviceFilter(ApiModel):
    """Which devices: every filter given must hold (none given = every registered device)."""

    uids: list[str] | None = Field(default=None, description="exactly these devices")
    scheme: SchemeName | None = None
    site_name: str | None = None
    q: str | None = Field(default=None, description="part of the uid or display name")
    online: bool | None = None


class FleetApply(ApiModel):
    """One strategy template for many devices: on each, one update_all with it as the only item,
    so the device's strategy for (meter, class) is updated, or created when it has none."""

    strategy: StrategyCreate
    devices: DeviceFilter = Field(default_factory=DeviceFilter)
    concurrency: int = Field(default=8, ge=1, le=64, description="commands in flight at once")


class FleetItem(BaseModel):
    uid: str
    status: int = Field(description="the HTTP status this device alone would have given")
    mid: str | None
    code: int | None = Field(description="the EMS's code, when it answered")
    msg: str
    data: Any = None


class FleetResult(BaseModel):
    items: list[FleetItem]
    succeeded: int
    failed: int


# --- telemetry ----------------------------------------------------------------------------


class TelemetryPoint(BaseModel):
    at: datetime = Field(description="start of the step (UTC)")
    grid_avg_kw: float = Field(description="mean grid power, + import")
    grid_min_kw: float
    grid_max_kw: float
    samples: int


class TelemetrySeries(BaseModel):
    device_uid: str
    meter_id: int
    step_s: int
    points: list[TelemetryPoint]


class DemandMonth(BaseModel):
    meter_id: int
    month: str = Field(description="YYYY-MM in the site's time zone")
    peak_kw: float = Field(description="highest 15-minute demand of the month")
    peak_at: datetime = Field(description="end of the peak's window")
    limit_kw: float | None = Field(description="that month's over-demand limit, when set")
    over_limit: bool


# --- alarms -------------------------------------------------------------------------------


class AlarmRuleCreate(ApiModel):
    kind: AlarmKind
    device_uid: str | None = Field(default=None, description="one device; none = every device")
    duration_s: float = Field(
        default=0.0, ge=0, description="how long a telemetry condition must hold first"
    )
    severity: Severity = "warning"
    webhook_url: AnyHttpUrl | None = Field(
        default=None, description="POSTed a JSON event when an alarm starts and ends"
    )


class AlarmRulePublic(BaseModel):
    id: int
    kind: AlarmKind
    device_uid: str | None
    duration_s: float
    severity: Severity
    webhook_url: str | None
    created_at: datetime


class AlarmPublic(BaseModel):
    id: int
    rule_id: int | None
    kind: AlarmKind
    device_uid: str
    subject: str = Field(description="what it is about: a meter, the device, a command mid")
    severity: Severity
    message: str
    started_at: datetime
    ended_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None


class AuditEventPublic(BaseModel):
    id: int
    at: datetime
    user_name: str
    token_id: int | None
    action: str = Field(description="e.g. device.register, user.create, token.revoke, auth.login")
    target: str = Field(description="the resource: a device uid, a user name or id, a token id")
    detail: dict[str, Any] | None
