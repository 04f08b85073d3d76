"""The `gridguard` command: one entry point with a sub-command per job.

Sub-commands import their implementation lazily, so `gridguard --help` stays fast and a
missing optional piece never breaks the others.

Rulings: none owned.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gridguard.platform.cli import add_device_commands, strategy_app

if TYPE_CHECKING:
    from gridguard.edge.run import Overrides
    from gridguard.site.config import SiteConfig

app = typer.Typer(
    name="gridguard",
    help=(
        "GridGuard: demand management and anti-backflow (需量管理与防逆流) for sites with a "
        "grid meter, battery storage, PV and EV charging piles."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
edge_app = typer.Typer(
    help="The EMS edge agent: serve the MQTT strategy protocol and control.", no_args_is_help=True
)
sim_app = typer.Typer(
    help="The site simulator: Modbus servers driven by a plant model.", no_args_is_help=True
)
bench_app = typer.Typer(
    help="Benchmarks that print a table: closed-loop control (bench/ has protocol, store, Modbus).",
    no_args_is_help=True,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version  # noqa: PLC0415

        print(f"gridguard {version('gridguard')}")
        raise typer.Exit


@app.callback()
def main(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version, exit"
        ),
    ] = False,
) -> None:
    """GridGuard: demand management and anti-backflow for C&I sites."""


devices_app = typer.Typer(
    help=(
        "Devices: probe the field devices of a site (probe), or the EMSs registered on the "
        "platform (list, show)."
    ),
    no_args_is_help=True,
)
app.add_typer(edge_app, name="edge")
app.add_typer(devices_app, name="devices")
app.add_typer(sim_app, name="sim")
platform_app = typer.Typer(
    help="The platform: fleet REST API over the MQTT strategy protocol.", no_args_is_help=True
)
platform_user_app = typer.Typer(help="Platform users (straight to the database).")
app.add_typer(bench_app, name="bench")
app.add_typer(platform_app, name="platform")
app.add_typer(strategy_app, name="strategy")
add_device_commands(devices_app)
platform_app.add_typer(platform_user_app, name="user")


@bench_app.command("control")
def bench_control(
    scenario: Annotated[
        list[Path] | None,
        typer.Option(
            "--scenario", help="Scenario TOML (repeatable); default: the shipped scenarios"
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object keyed by scenario name")
    ] = False,
    variant: Annotated[
        list[str] | None,
        typer.Option("--variant", help="Plant variant (repeatable); default: every variant"),
    ] = None,
    plant: Annotated[
        list[str] | None,
        typer.Option("--plant", help="KEY=VALUE over every scenario's [plant] (repeatable)"),
    ] = None,
) -> None:
    """Closed-loop control at 1 s per scenario x plant variant: GridGuard vs a baseline."""
    from gridguard.lab.report import main  # noqa: PLC0415

    overrides: dict[str, str] = {}
    for item in plant or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--plant {item!r}: expected KEY=VALUE")
        overrides[key.strip()] = value.strip()
    try:
        main(scenario, as_json=as_json, out=print, variants=variant, overrides=overrides)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


@app.command()
def schema(
    out: Annotated[Path, typer.Option("--out", help="Folder to write one JSON Schema per message")],
) -> None:
    """Write a JSON Schema file per protocol message type, for platform developers."""
    from gridguard.protocol.schema import write_schemas  # noqa: PLC0415

    written = write_schemas(out)
    for path in written:
        print(path)
    print(f"{len(written)} schemas written to {out}")


ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", help="Site configuration TOML (see examples/edge.toml)"),
]


def _load_or_exit(config: Path, overrides: Overrides | None = None) -> SiteConfig:
    """Load the site file or exit 2 with the file, key and rule that are wrong."""
    from gridguard.edge.run import load_config  # noqa: PLC0415
    from gridguard.site.config import ConfigError  # noqa: PLC0415

    try:
        return load_config(config, overrides)
    except ConfigError as exc:
        typer.echo(f"error: configuration refused\n{exc}", err=True)
        raise typer.Exit(code=2) from None


@edge_app.command("run")
def edge_run(
    config: ConfigOption,
    mqtt_url: Annotated[
        str | None, typer.Option(help="Broker URL: mqtt://\\[user:pw@]host\\[:port] or mqtts://...")
    ] = None,
    device_uid: Annotated[str | None, typer.Option(help="This EMS's device UID")] = None,
    scheme: Annotated[
        str | None, typer.Option(help="Topic prefix scheme: wudun, user or custom (D1)")
    ] = None,
    product_key: Annotated[str | None, typer.Option(help="Product key (scheme wudun)")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant (scheme user)")] = None,
    prefix: Annotated[str | None, typer.Option(help="Topic prefix (scheme custom)")] = None,
    db: Annotated[
        str | None, typer.Option(help="Store: SQLite path/URL or postgresql://user@host/db")
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
    metrics_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Serve Prometheus metrics at :PORT/metrics"),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="Address for --metrics-port (0.0.0.0: every interface)")
    ] = "127.0.0.1",
) -> None:
    """Run the edge agent: serve the strategy protocol over MQTT and enforce it."""
    import logging  # noqa: PLC0415

    from gridguard.edge.run import MetricsEndpoint, MetricsError, Overrides, serve  # noqa: PLC0415

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from gridguard.store.base import StoreError  # noqa: PLC0415

    overrides = Overrides(mqtt_url, device_uid, scheme, product_key, tenant, prefix, db)
    site = _load_or_exit(config, overrides)
    metrics = MetricsEndpoint(metrics_port, metrics_host) if metrics_port else None
    try:
        serve(site, metrics)
    except (StoreError, MetricsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None


@edge_app.command("strategies")
def edge_strategies(
    config: ConfigOption,
    db: Annotated[str | None, typer.Option(help="Store URL, if not the file's")] = None,
) -> None:
    """Print the stored strategies as a table (offline: reads the store, no MQTT)."""
    import asyncio  # noqa: PLC0415

    from gridguard.edge.run import (  # noqa: PLC0415
        Overrides,
        format_table,
        read_strategies,
        strategy_rows,
    )

    site = _load_or_exit(config, Overrides(db=db))
    strategies = asyncio.run(read_strategies(site))
    if not strategies:
        print(f"no strategies stored in {site.store.url}")
        return
    print(format_table(strategy_rows(strategies, site.site.time_zone)))


@devices_app.command("probe")
def devices_probe(config: ConfigOption) -> None:
    """Read every configured meter and device once (writes nothing) and print a table.

    Exit status 0 when all answered, 1 when one did not, 2 for a wrong file or map."""
    import asyncio  # noqa: PLC0415
    import logging  # noqa: PLC0415

    from gridguard.devices.modbus.regmap import MapError  # noqa: PLC0415
    from gridguard.devices.probe import probe_rows, probe_site  # noqa: PLC0415
    from gridguard.edge.run import format_table  # noqa: PLC0415

    logging.basicConfig(level=logging.ERROR)  # the table says what failed
    site = _load_or_exit(config)
    try:
        rows = asyncio.run(probe_site(site))
    except MapError as exc:
        typer.echo(f"error: register map refused\n{exc}", err=True)
        raise typer.Exit(code=2) from None
    print(format_table(probe_rows(rows)))
    offline = [r for r in rows if not r.online]
    print(f"{len(rows) - len(offline)} of {len(rows)} answered")
    if offline:
        raise typer.Exit(code=1)


@sim_app.command("run")
def sim_run(
    config: Annotated[Path, typer.Option("--config", help="Site TOML file (the edge agent's)")],
    scenario: Annotated[
        Path | None, typer.Option("--scenario", help="Scenario file; default: a daily profile")
    ] = None,
    speed: Annotated[
        float, typer.Option("--speed", min=0.01, help="Simulated seconds per real second")
    ] = 1.0,
    start: Annotated[
        str | None, typer.Option("--start", help="Daily profile start time HH:MM; default now")
    ] = None,
) -> None:
    """Serve the site's meters and devices over Modbus TCP on loopback, driven by a plant model."""
    import sys  # noqa: PLC0415

    from gridguard.devices.modbus.regmap import MapError  # noqa: PLC0415
    from gridguard.sim.runner import run_simulator  # noqa: PLC0415
    from gridguard.sim.servers import SimulatorError  # noqa: PLC0415
    from gridguard.site.config import ConfigError  # noqa: PLC0415

    try:
        run_simulator(config, scenario=scenario, speed=speed, start=start)
    except (ConfigError, MapError, SimulatorError) as exc:
        print(exc, file=sys.stderr)
        raise typer.Exit(2) from exc


@sim_app.command("fleet")
def sim_fleet(
    count: Annotated[int, typer.Option("--count", min=1, help="Simulated EMS devices")],
    mqtt_url: Annotated[
        str, typer.Option("--mqtt-url", help="Broker URL: mqtt://\\[user:pw@]host\\[:port]")
    ] = "mqtt://127.0.0.1:1883",
    prefix: Annotated[
        str, typer.Option("--prefix", help="Topic prefix (custom scheme, D1)")
    ] = "v1/gridguard",
    uid_prefix: Annotated[
        str, typer.Option("--uid-prefix", help="Device UIDs are PREFIX-00000, PREFIX-00001, ...")
    ] = "sim",
    first: Annotated[int, typer.Option("--first", min=0, help="Number of the first device")] = 0,
    status_interval_s: Annotated[
        float, typer.Option("--status-interval-s", min=0.01, help="status/post period per device")
    ] = 2.0,
    stats_interval_s: Annotated[
        float, typer.Option("--stats-interval-s", min=0.1, help="How often to print statistics")
    ] = 10.0,
    connectors: Annotated[
        int, typer.Option("--connectors", min=1, help="Connections opened at once")
    ] = 64,
    status_qos: Annotated[
        int, typer.Option("--status-qos", min=0, max=1, help="QoS of status/post (as the agent: 1)")
    ] = 1,
) -> None:
    """N simulated EMS in one process, each serving the strategy protocol over MQTT."""
    import asyncio  # noqa: PLC0415

    from gridguard.protocol.errors import ProtocolError  # noqa: PLC0415
    from gridguard.sim.fleet import FleetConfig, run_fleet  # noqa: PLC0415

    try:
        config = FleetConfig(
            count=count,
            mqtt_url=mqtt_url,
            prefix=prefix,
            uid_prefix=uid_prefix,
            first=first,
            status_interval_s=status_interval_s,
            stats_interval_s=stats_interval_s,
            connectors=connectors,
            status_qos=status_qos,
        )
    except (ValueError, ProtocolError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    asyncio.run(run_fleet(config, echo=lambda line: print(line, flush=True)))


@app.command()
def demo(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Site file to simulate; default: the demo's own"),
    ] = None,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the agent and the platform keep their data")
    ] = Path("gridguard-data"),
    port_base: Annotated[
        int | None,
        typer.Option(
            "--port-base",
            min=1,
            max=65000,
            help="Broker on this port, Modbus endpoints on the next ones; default: free ports",
        ),
    ] = None,
    platform_port: Annotated[
        int | None,
        typer.Option(
            "--platform-port",
            min=1,
            max=65535,
            help="Dashboard and REST API on 127.0.0.1:PORT; default: a free port",
        ),
    ] = None,
    fleet: Annotated[
        int,
        typer.Option(
            "--fleet", min=0, max=5000, help="Simulated EMS beside the real site (0: none)"
        ),
    ] = 300,  # gridguard.demo.dashboard.DEFAULT_FLEET (the cli imports it lazily)
) -> None:
    """Run everything on this machine: embedded broker, simulated site, edge agent, platform
    with its dashboard, and a simulated fleet."""
    import asyncio  # noqa: PLC0415
    import logging  # noqa: PLC0415

    from gridguard.demo.run import DemoError, packaged_site, run_demo  # noqa: PLC0415

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    site = packaged_site() if config is None else _load_or_exit(config)
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(
            run_demo(
                site,
                data_dir,
                lambda line: print(line, flush=True),
                port_base=port_base,
                platform_port=platform_port,
                fleet_count=fleet,
            )
        )
    except DemoError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None


PlatformDb = Annotated[
    str,
    typer.Option(
        "--db", help="SQLite path/URL or postgresql://user@host/db (default: ./gridguard-platform/)"
    ),
]


@platform_app.command("run")
def platform_run(
    db: PlatformDb = "sqlite:///gridguard-platform/platform.db",
    mqtt_url: Annotated[str, typer.Option(help="Broker: mqtt://[user:pw@]host[:port]")] = (
        "mqtt://127.0.0.1:1883"
    ),
    listen: Annotated[str, typer.Option(help="HTTP HOST:PORT")] = "127.0.0.1:8080",
    prefix: Annotated[
        list[str] | None,
        typer.Option(
            help="Topic prefix to serve, repeatable ('+' allowed); default v1/wudun/+ and v1/user/+"
        ),
    ] = None,
    command_timeout_s: Annotated[float, typer.Option(help="Wait per attempt for a result")] = 10.0,
    command_retries: Annotated[int, typer.Option(help="Re-sends under the same mid")] = 1,
    offline_after: Annotated[
        float, typer.Option(help="Report intervals of silence before a device is offline")
    ] = 3.0,
    client_id: Annotated[
        str | None,
        typer.Option(
            help="This instance's MQTT client id; give each instance its own, kept across "
            "restarts, to resume its broker session (default: a fresh one per start)"
        ),
    ] = None,
    mqtt_version: Annotated[
        str, typer.Option(help="auto (MQTT 5, else 3.1.1), 5 or 3.1.1")
    ] = "auto",
    session_expiry_s: Annotated[
        int,
        typer.Option(
            help="MQTT 5: seconds the broker keeps a gone instance's session; reports are "
            "acknowledged once stored (0: clean sessions, acknowledged on receipt)"
        ),
    ] = 300,
    takeover: Annotated[
        bool,
        typer.Option(
            help="Take over the broker sessions of dead instances (turn off where the broker "
            "forces the client id to the certificate's name)"
        ),
    ] = True,
    log_level: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
) -> None:
    """Run the platform: REST API, device registry and command round trip."""
    import logging  # noqa: PLC0415

    from gridguard.platform.run import StartError, serve  # noqa: PLC0415
    from gridguard.platform.settings import DEFAULT_PREFIXES, Settings, parse_listen  # noqa: PLC0415

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        host, port = parse_listen(listen)
        settings = Settings(
            db_url=db,
            mqtt_url=mqtt_url,
            host=host,
            port=port,
            prefixes=tuple(prefix) if prefix else DEFAULT_PREFIXES,
            command_timeout_s=command_timeout_s,
            command_retries=command_retries,
            offline_after_intervals=offline_after,
            client_id=client_id,
            mqtt_version=_mqtt_version(mqtt_version),
            session_expiry_s=session_expiry_s,
            takeover=takeover,
        )
        serve(settings)
    except (ValueError, StartError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None


def _mqtt_version(text: str) -> int | None:
    versions = {"auto": None, "5": 5, "3.1.1": 4}
    if text not in versions:
        raise ValueError(f"--mqtt-version {text!r}: auto, 5 or 3.1.1")
    return versions[text]


def _read_password(password_stdin: bool) -> str:
    import os  # noqa: PLC0415
    import sys  # noqa: PLC0415

    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    from_env = os.environ.get("GRIDGUARD_PASSWORD")
    if from_env:
        return from_env
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@platform_user_app.command("add")
def platform_user_add(
    name: Annotated[str, typer.Argument(help="User name")],
    role: Annotated[str, typer.Option(help="viewer, operator or admin")] = "viewer",
    db: PlatformDb = "sqlite:///gridguard-platform/platform.db",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin")
    ] = False,
) -> None:
    """Add a user. The password comes from stdin, GRIDGUARD_PASSWORD or a prompt; no default."""
    import asyncio  # noqa: PLC0415

    from gridguard.platform.admin import add_user  # noqa: PLC0415
    from gridguard.platform.errors import PlatformError  # noqa: PLC0415
    from gridguard.platform.security import Role  # noqa: PLC0415

    try:
        user = asyncio.run(
            add_user(db, name=name, password=_read_password(password_stdin), role=Role(role))
        )
    except (ValueError, PlatformError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(f"user {user.name} ({user.role.value}) created, id {user.id}")
