"""The `gridguard` command: one entry point with a sub-command per job.

Sub-commands import their implementation lazily, so `gridguard --help` stays fast and a
missing optional piece never breaks the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
    help="Benchmarks that print a table (closed-loop control, protocol).", no_args_is_help=True
)
app.add_typer(edge_app, name="edge")
app.add_typer(sim_app, name="sim")
app.add_typer(bench_app, name="bench")


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
