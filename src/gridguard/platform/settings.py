"""The platform's settings, from the command line (``gridguard platform run``)."""

from __future__ import annotations

from dataclasses import dataclass

from gridguard.platform.database import DEFAULT_DB_URL

DEFAULT_PREFIXES = ("v1/wudun/+", "v1/user/+")


def _is_topic_level(text: str) -> bool:
    return bool(text) and not any(c in text for c in "/+#")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything ``platform run`` can set; each default is the documented one."""

    db_url: str = DEFAULT_DB_URL
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    host: str = "127.0.0.1"
    port: int = 8080
    prefixes: tuple[str, ...] = DEFAULT_PREFIXES
    command_timeout_s: float = 10.0
    command_retries: int = 1
    offline_after_intervals: float = 3.0
    default_report_interval_s: float = 300.0
    login_attempts: int = 5
    login_window_s: float = 60.0
    client_id: str | None = None
    """The instance's MQTT client id (a fresh one per start when None). Given, a restarted
    instance resumes the session it had on the broker and gets what came while it was away."""
    mqtt_version: int | None = None
    """5, 4 (MQTT 3.1.1) or None: MQTT 5, and 3.1.1 if the broker does not speak 5."""
    takeover: bool = True
    """Take the sessions of dead instances over (MQTT 5). Off for a broker that forces the
    client id to the certificate's name (``use_username_as_clientid``)."""
    session_expiry_s: int = 300
    """MQTT 5: how long the broker keeps an instance's session (and what it receives) when the
    instance is gone and nobody takes the session over; reports are acknowledged only once
    stored. 0: clean sessions, acknowledged on receipt (a killed instance loses what it had
    not stored)."""
    share_group: str | None = "gridguard-platform"
    """status/post arrives through ``$share/{share_group}/…``: each report reaches one instance.
    None: a plain subscription (one instance only; for a broker without shared subscriptions)."""
    sweep_period_s: float = 5.0
    samples_retention_days: float = 7.0
    minutes_retention_days: float = 400.0

    def _check_mqtt(self) -> None:
        if self.client_id is not None and not _is_topic_level(self.client_id):
            raise ValueError(f"client_id {self.client_id!r}: no '/', '+' or '#' (it names a topic)")
        if self.mqtt_version not in {None, 4, 5}:
            raise ValueError(f"mqtt_version {self.mqtt_version}: 5, 4 (3.1.1) or automatic")
        if not 0 <= self.session_expiry_s <= 0xFFFFFFFF:
            raise ValueError(f"session_expiry_s must be 0..4294967295, got {self.session_expiry_s}")

    def __post_init__(self) -> None:
        if self.command_timeout_s <= 0:
            raise ValueError(f"command_timeout_s must be > 0, got {self.command_timeout_s}")
        if self.command_retries < 0:
            raise ValueError(f"command_retries must be >= 0, got {self.command_retries}")
        if self.offline_after_intervals <= 0:
            raise ValueError("offline_after_intervals must be > 0")
        if self.share_group is not None and not _is_topic_level(self.share_group):
            raise ValueError(f"share_group {self.share_group!r}: one topic level, no wildcards")
        self._check_mqtt()
        if not self.prefixes:
            raise ValueError("prefixes: subscribe to at least one topic prefix")
        for prefix in self.prefixes:
            if not prefix or "#" in prefix or prefix.startswith("/") or prefix.endswith("/"):
                raise ValueError(
                    f"prefix {prefix!r}: one or more topic levels, '+' allowed, '#' not"
                )


def parse_listen(listen: str) -> tuple[str, int]:
    """``127.0.0.1:8080`` -> (host, port); ValueError naming the rule."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"listen {listen!r}: expected HOST:PORT with a port in 1..65535")
    return host.strip("[]"), int(port_text)
