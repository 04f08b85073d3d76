"""The site configuration file (TOML): identity, broker, store, meters and devices.

One file describes one EMS: who it is on MQTT, where it keeps its state, and the field devices
it controls. The edge agent, the simulator and the demo all read the same file, so the
simulator serves exactly the Modbus endpoints the agent will poll.

A file that is wrong is refused as a whole with :class:`ConfigError`, whose message names the
file and line, the key path (tables of an array counted from 1, as a reader counts them) and
the rule (``edge.toml:57: storage[1].rated_kw: Input should be greater than 0``).

Relative paths in a file (the SQLite store, TLS files) are relative to the file's folder, not
to the working directory, so every command reading one file finds the same database.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gridguard.redact import redact
from gridguard.site.topology import SiteTopology

DEFAULT_TIME_ZONE = "Asia/Shanghai"


class ConfigError(Exception):
    """The configuration file cannot be used; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Strict):
    ca_file: Path | None = Field(default=None, description="CA bundle to verify the broker")
    cert_file: Path | None = Field(default=None, description="client certificate (PEM)")
    key_file: Path | None = Field(default=None, description="client private key (PEM)")
    insecure: bool = Field(default=False, description="skip host name check: tests only")


class MqttConfig(_Strict):
    url: str = Field(default="mqtt://127.0.0.1:1883", description="mqtt:// or mqtts://")
    urls: list[str] = Field(
        default_factory=list, description="brokers of a cluster, tried in turn (default: [url])"
    )
    password_env: str | None = Field(
        default=None, description="environment variable holding the broker password"
    )
    password_file: Path | None = Field(default=None, description="file holding the password")
    scheme: Literal["wudun", "user", "custom"] = Field(default="custom", description="D1")
    product_key: str | None = Field(default=None, description="for scheme wudun")
    tenant: str | None = Field(default=None, description="for scheme user")
    prefix: str | None = Field(default=None, description="for scheme custom, e.g. v1/acme")
    client_id: str | None = Field(default=None, description="default: gridguard-<device uid>")
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    retain_list: bool = Field(default=True, description="publish list/post retained (D5)")
    status_enabled: bool = Field(default=True, description="extension status topic")
    status_interval_s: float = Field(default=5.0, gt=0)
    status_qos: Literal[0, 1] = Field(
        default=1,
        description="QoS of the status topic: 1 lets a platform that acknowledges after storing "
        "lose nothing when one of its instances dies; 0 for an uplink that cannot carry the acks",
    )
    max_payload_bytes: int = Field(default=256 * 1024, gt=0, description="D6")
    puback_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="a reply unacknowledged this long ends the session: next broker",
    )
    tls: TlsConfig = Field(default_factory=TlsConfig)

    @model_validator(mode="after")
    def _scheme_parameters(self) -> Self:
        needed = {"wudun": "product_key", "user": "tenant", "custom": "prefix"}[self.scheme]
        if not getattr(self, needed):
            raise ValueError(f"scheme {self.scheme!r} needs mqtt.{needed}")
        for url in self.broker_urls:
            check_broker_url(url)
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        return self

    @property
    def broker_urls(self) -> list[str]:
        """The brokers to try, in order: ``urls`` if given, else ``[url]``."""
        return list(self.urls) or [self.url]


def check_broker_url(url: str) -> None:
    """ValueError (naming the URL without its password) unless ``url`` is usable."""
    shown = redact(url)
    parts = urlsplit(url)
    if parts.scheme not in {"mqtt", "mqtts"}:
        raise ValueError(f"url {shown!r} must start with mqtt:// or mqtts://")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError:
        raise ValueError(f"url {shown!r}: the port must be a number in 0..65535") from None
    if not parts.hostname:
        raise ValueError(f"url {shown!r}: no host")


class DeviceIdentity(_Strict):
    uid: str = Field(min_length=1, description="this EMS's device UID on MQTT")
    name: str = "GridGuard EMS"
    site_name: str = "GridGuard site"


class SiteSettings(_Strict):
    time_zone: str = Field(default=DEFAULT_TIME_ZONE, description="for month boundaries (D14)")
    report_interval_s: float = Field(default=300.0, gt=0, description="list/post period (D13)")
    maps_dir: Path | None = Field(
        default=None, description="your own register maps, searched before the shipped ones"
    )

    @model_validator(mode="after")
    def _zone_exists(self) -> Self:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415

        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"time_zone {self.time_zone!r} is not a known IANA zone") from exc
        return self


class StoreConfig(_Strict):
    url: str = Field(
        default="sqlite:///gridguard-data/edge.db",
        description="sqlite:///PATH or postgresql://user@host/db",
    )


class ControlConfig(_Strict):
    period_s: float = Field(default=1.0, ge=0.05, le=60, description="control cycle period")
    meter_timeout_s: float = Field(default=3.0, gt=0, description="D21 fail-safe after this")
    demand_window_s: int = Field(default=900, gt=0, description="D17 sliding window")
    demand_step_s: int = Field(default=60, gt=0, description="D17 window step")
    buffer_kw: float = Field(default=2.0, ge=0, description="D20 margin inside a bound")
    relax_kw_per_s: float = Field(default=50.0, gt=0, description="D20 relax ramp")
    pv_failsafe_pct: float = Field(default=0.0, ge=0, le=100, description="D21 PV limit")
    actuator_lag_s: float = Field(
        default=0.0,
        ge=0,
        le=60,
        description="time constant of the devices' response; > 0 lets the control lead it",
    )
    meter_delay_s: float = Field(
        default=0.0,
        ge=0,
        le=60,
        description="how late the gateway meter's reading is (a gateway polling an RS-485 "
        "meter); rounded to whole periods, at most 2 x period_s",
    )
    identify_meter_delay: bool = Field(
        default=True,
        description="let consistent evidence from the readings replace meter_delay_s "
        "(and fall back to it when the evidence fades)",
    )
    command_delay_s: float = Field(
        default=0.0,
        ge=0,
        le=60,
        description="how late a written setpoint acts (a gateway forwarding writes a cycle "
        "later); rounded to whole periods, at most 2 x period_s",
    )
    identify_command_delay: bool = Field(
        default=True,
        description="let consistent evidence from the devices' responses replace "
        "command_delay_s (and fall back to it when the evidence fades)",
    )
    mode: Literal["enforce", "observe"] = Field(
        default="enforce",
        description="observe: run the whole loop and report the setpoints, write nothing",
    )
    readback_interval_s: float = Field(
        default=10.0,
        ge=0,
        description="read back written setpoints this often to catch another Modbus master; "
        "0 turns the check off",
    )

    @model_validator(mode="after")
    def _meter_delay_within_two_periods(self) -> Self:
        if self.meter_delay_s > 2.0 * self.period_s + 1e-9:
            raise ValueError(
                f"meter_delay_s {self.meter_delay_s:g} must be at most 2 x period_s "
                f"({2.0 * self.period_s:g} s): a meter later than two cycles cannot be aligned"
            )
        if self.command_delay_s > 2.0 * self.period_s + 1e-9:
            raise ValueError(
                f"command_delay_s {self.command_delay_s:g} must be at most 2 x period_s "
                f"({2.0 * self.period_s:g} s): setpoints later than two cycles cannot be "
                "compensated"
            )
        return self


class ModbusLink(_Strict):
    """How to reach one Modbus device: TCP (host, port) or RTU (serial port settings)."""

    transport: Literal["tcp", "rtu"] = "tcp"
    host: str = "127.0.0.1"
    port: int = Field(default=502, ge=0, le=65535)
    serial_port: str = Field(default="", description="RTU: e.g. /dev/ttyS1")
    baud_rate: int = Field(default=9600, gt=0)
    data_bits: int = Field(default=8, ge=5, le=8)
    stop_bits: int = Field(default=1, ge=1, le=2)
    parity: Literal["N", "E", "O"] = "N"
    slave_id: int = Field(default=1, ge=0, le=247)
    timeout_s: float = Field(default=0.5, gt=0)
    retries: int = Field(default=1, ge=0, le=10)

    @model_validator(mode="after")
    def _rtu_port(self) -> Self:
        if self.transport == "rtu" and not self.serial_port:
            raise ValueError("transport 'rtu' needs serial_port")
        return self


class MeterConfig(_Strict):
    id: int = Field(gt=0)
    uid: str = ""
    name: str = ""
    station_name: str = ""
    type: str = Field(default="Acrel-ADW300", description="meter model, selects the map")
    type_id: int = Field(default=1, ge=0)
    purpose: Literal[1, 2] = Field(default=1, description="1 gateway meter, 2 sub-meter")
    direction: Literal[1, -1] = Field(default=1, description="-1: mounted reversed")
    pt: int = Field(default=1, gt=0)
    ct: int = Field(default=1, gt=0)
    per_phase: bool = Field(default=True, description="gives per-phase power (D16)")
    word_order: Literal["big", "little"] = "big"
    modbus: ModbusLink = Field(default_factory=ModbusLink)


class _DeviceBase(_Strict):
    id: int = Field(gt=0)
    uid: str = ""
    name: str = ""
    meter_id: int = Field(gt=0, description="the gateway meter it sits behind")
    model: str = Field(default="", description="register map name")
    modbus: ModbusLink = Field(default_factory=ModbusLink)


class StorageConfig(_DeviceBase):
    model: str = "generic-pcs"
    rated_kw: float = Field(gt=0)
    capacity_kwh: float = Field(gt=0)
    soc_min_pct: float = Field(default=10.0, ge=0, le=100)
    soc_max_pct: float = Field(default=95.0, ge=0, le=100)
    efficiency: float = Field(default=0.92, gt=0, le=1, description="round-trip")

    @model_validator(mode="after")
    def _soc_order(self) -> Self:
        if self.soc_min_pct >= self.soc_max_pct:
            raise ValueError("soc_min_pct must be below soc_max_pct")
        return self


class PvConfig(_DeviceBase):
    model: str = "generic-pv"
    rated_kw: float = Field(gt=0)


class ChargerConfig(_DeviceBase):
    model: str = "generic-charger"
    rated_kw: float = Field(gt=0)
    min_kw: float = Field(default=0.0, ge=0, description="lowest power before pausing")
    priority: int = Field(default=1, ge=0, description="higher = throttled later")

    @model_validator(mode="after")
    def _min_below_rated(self) -> Self:
        if self.min_kw > self.rated_kw:
            raise ValueError("min_kw must not exceed rated_kw")
        return self


PositiveFloat = Annotated[float, Field(gt=0)]


class SiteConfig(_Strict):
    device: DeviceIdentity
    mqtt: MqttConfig = Field(default_factory=lambda: MqttConfig(prefix="v1/gridguard"))
    site: SiteSettings = Field(default_factory=SiteSettings)
    store: StoreConfig = Field(default_factory=StoreConfig)
    control: ControlConfig = Field(default_factory=ControlConfig)
    meters: list[MeterConfig] = Field(default_factory=list)
    storage: list[StorageConfig] = Field(default_factory=list)
    pv: list[PvConfig] = Field(default_factory=list)
    chargers: list[ChargerConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> Self:
        meter_ids = [m.id for m in self.meters]
        if len(set(meter_ids)) != len(meter_ids):
            raise ValueError("meters: meter ids must be unique")
        for kind in ("storage", "pv", "chargers"):
            devices: list[_DeviceBase] = getattr(self, kind)
            ids = [d.id for d in devices]
            if len(set(ids)) != len(ids):
                raise ValueError(f"{kind}: device ids must be unique")
            for index, dev in enumerate(devices):
                if dev.meter_id not in meter_ids:
                    raise ValueError(
                        f"{kind}[{index + 1}].meter_id: meter {dev.meter_id} is not in [[meters]]"
                    )
        return self

    def meter(self, meter_id: int) -> MeterConfig | None:
        branch = self.topology.branch(meter_id)
        return branch.meter if branch else None

    @cached_property
    def topology(self) -> SiteTopology:
        """Meter -> its storage, PV and chargers, computed once (the config is frozen)."""
        return SiteTopology.from_config(self)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy (``update`` replaces fields); its topology is computed anew from it."""
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("topology", None)
        return copied


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _table_header(line: str) -> str | None:
    """The name of a ``[table]`` or ``[[array]]`` header line, else None."""
    stripped = line.split("#", 1)[0].strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        return stripped.strip("[]").strip()
    return None


def line_of(text: str, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of a key path in the TOML text: the key's own line when found in its
    table, else the table's header; None when the table is not in the text (a default)."""
    table = str(loc[0])
    index = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
    keys = [part for part in loc[1:] if isinstance(part, str)]
    occurrence, header_line = -1, None
    for number, line in enumerate(text.splitlines(), start=1):
        header = _table_header(line)
        if header is not None:
            if header_line is not None:
                break
            if header == table:
                occurrence += 1
                header_line = number if occurrence == index else None
            continue
        if header_line is not None and keys and line.split("=", 1)[0].strip() == keys[0]:
            return number
    return header_line


def _where(source: str, text: str | None, loc: tuple[int | str, ...]) -> str:
    line = line_of(text, loc) if text is not None and loc else None
    return f"{source}:{line}" if line is not None else source


def parse_site_config(
    data: dict[str, Any], source: str = "<config>", text: str | None = None
) -> SiteConfig:
    """Validate a decoded TOML document; raise ConfigError naming source, line, key and rule.

    ``text`` (the file as read) gives the line numbers."""
    try:
        return SiteConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            where = _loc(loc)
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling against examples/edge.toml)"
            at = _where(source, text, loc)
            lines.append(f"{at}: {where}: {msg}" if where else f"{at}: {msg}")
        raise ConfigError("\n".join(lines)) from exc


def _relative_to(base_dir: Path, path: str) -> str:
    return path if Path(path).is_absolute() else str(base_dir / path)


def anchor_paths(data: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """The document with its relative paths made relative to ``base_dir`` (the file's folder):
    the SQLite store (``sqlite:///rel.db`` or a bare path, the default included), the maps
    folder and the TLS files. Other URLs (``sqlite:////abs``, ``postgresql://``,
    ``memory://``) are left alone."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    store = out.setdefault("store", {})
    url = store.get("url", StoreConfig().url)
    if isinstance(url, str) and url.strip():
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            store["url"] = "sqlite:///" + _relative_to(base_dir, url.removeprefix("sqlite:///"))
        elif "://" not in url:
            store["url"] = _relative_to(base_dir, url)
    settings = out.get("site")
    if isinstance(settings, dict) and isinstance(settings.get("maps_dir"), str):
        out["site"] = {**settings, "maps_dir": _relative_to(base_dir, settings["maps_dir"])}
    mqtt = out.get("mqtt")
    if isinstance(mqtt, dict) and isinstance(mqtt.get("tls"), dict):
        tls = dict(mqtt["tls"])
        for key in ("ca_file", "cert_file", "key_file"):
            if isinstance(tls.get(key), str):
                tls[key] = _relative_to(base_dir, tls[key])
        mqtt["tls"] = tls
    return out


def read_site_file(path: Path) -> tuple[dict[str, Any], str]:
    """The decoded document (relative paths anchored at the file's folder) and its text."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return anchor_paths(data, path.parent.absolute()), text


def load_site_config(path: Path) -> SiteConfig:
    """Read and validate a site TOML file."""
    data, text = read_site_file(path)
    return parse_site_config(data, str(path), text)
