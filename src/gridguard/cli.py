"""The `gridguard` command: one entry point with a sub-command per job.

Sub-commands import their implementation lazily, so `gridguard --help` stays fast and a
missing optional piece never breaks the others.

Rulings: none owned.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

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
app.add_typer(edge_app, name="edge")
app.add_typer(sim_app, name="sim")
app.add_typer(bench_app, name="bench")


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
) -> None:
    """Run the edge agent: serve the strategy protocol over MQTT and enforce it."""
    import logging  # noqa: PLC0415

    from gridguard.edge.run import Overrides, serve  # noqa: PLC0415

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    overrides = Overrides(mqtt_url, device_uid, scheme, product_key, tenant, prefix, db)
    serve(_load_or_exit(config, overrides))


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


@app.command()
def demo(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Site file to run (simulated)")
    ] = Path("examples/edge.toml"),
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="Where the agent keeps its store")
    ] = Path("gridguard-data"),
) -> None:
    """Run everything on this machine: embedded broker, simulated site, edge agent."""
    import asyncio  # noqa: PLC0415
    import logging  # noqa: PLC0415

    from gridguard.demo.run import run_demo  # noqa: PLC0415

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    if not config.exists():
        typer.echo(
            f"error: {config} not found; run the demo from the GridGuard checkout "
            "or pass --config FILE",
            err=True,
        )
        raise typer.Exit(code=2)
    site = _load_or_exit(config)
    data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(run_demo(site, data_dir, print))
