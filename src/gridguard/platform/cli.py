"""``gridguard devices …`` and ``gridguard strategy …``: the platform's REST API from a shell.

Only typer is imported here; httpx and rich load when a command runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

strategy_app = typer.Typer(
    help="Strategies of one device through the platform (each change is one MQTT command).",
    no_args_is_help=True,
)

Api = Annotated[str, typer.Option("--api", envvar="GRIDGUARD_API", help="Platform base URL")]
TokenFile = Annotated[
    Path | None,
    typer.Option("--token-file", help="File holding the API token (else GRIDGUARD_TOKEN)"),
]
Json = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table")]
Device = Annotated[str, typer.Option("--device", "-d", help="The device UID")]
StrategyId = Annotated[int, typer.Argument(help="The strategy id on the EMS")]
Data = Annotated[str | None, typer.Option("--data", help="JSON body inline")]
DataFile = Annotated[Path | None, typer.Option("--file", "-f", help="JSON body from a file")]
DEFAULT_API = "http://127.0.0.1:8080"


def _call(api: str, token_file: Path | None, method: str, path: str, **kwargs: Any) -> Any:
    from gridguard.platform.api_client import ApiError, PlatformApi, read_token  # noqa: PLC0415

    try:
        with PlatformApi(api, read_token(token_file)) as client:
            return client.call(method, path, **kwargs)
    except ApiError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None


def _body(data: str | None, data_file: Path | None) -> Any:
    if (data is None) == (data_file is None):
        typer.echo("error: give the body with exactly one of --data or --file", err=True)
        raise typer.Exit(code=2)
    try:
        text = data if data is not None else data_file.read_text(encoding="utf-8")  # type: ignore[union-attr]
        return json.loads(text)
    except OSError as exc:
        typer.echo(f"error: cannot read {data_file}: {exc.strerror}", err=True)
    except json.JSONDecodeError as exc:
        typer.echo(
            f"error: the body is not JSON: line {exc.lineno} column {exc.colno}: {exc.msg}",
            err=True,
        )
    raise typer.Exit(code=2)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    Console().print(table)


def _print_json(document: Any) -> None:
    typer.echo(json.dumps(document, ensure_ascii=False, indent=2))


def _on_off(status: int, condition: Any = None) -> str:
    if status != 1:
        return "off"
    return "on" if condition is None else f"on {condition} kW"


def _strategy_rows(strategies: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            s["id"],
            s["ele_meter_id"],
            {2: "storage", 3: "pv", 4: "charger"}.get(s["device_type"], s["device_type"]),
            _on_off(s["streaming_status"], s["streaming_condition"]),
            _on_off(
                s["individual_phase_streaming_status"], s["individual_phase_streaming_condition"]
            ),
            _on_off(s["over_demand_status"], s["current_over_demand_condition"]),
            _on_off(s["dynamic_demand_status"], f"{s['dynamic_demand_percentage']}%"),
            s["updated_at"],
        ]
        for s in strategies
    ]


STRATEGY_COLUMNS = [
    "id",
    "meter",
    "class",
    "anti-backflow",
    "single-phase",
    "over-demand",
    "dynamic",
    "updated_at",
]


def _answer(answer: dict[str, Any], as_json: bool, what: str) -> None:
    if as_json:
        _print_json(answer)
        return
    data = f" {json.dumps(answer['data'])}" if answer.get("data") is not None else ""
    typer.echo(f"{what}: EMS answered {answer['code']}{data} (command {answer['mid']})")


def devices_list(
    api: Api = DEFAULT_API,
    token_file: TokenFile = None,
    as_json: Json = False,
    online: Annotated[
        bool | None, typer.Option("--online/--offline", help="Only online/offline")
    ] = None,
    search: Annotated[str | None, typer.Option("--search", help="Part of uid or name")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
) -> None:
    """List devices: uid, name, topic prefix, online, strategies, drift."""
    params: dict[str, Any] = {"limit": limit}
    if online is not None:
        params["online"] = online
    if search:
        params["q"] = search
    page = _call(api, token_file, "GET", "/api/devices", params=params)
    if as_json:
        _print_json(page)
        return
    rows = [
        [
            d["uid"],
            d["display_name"],
            d["topic_prefix"],
            "yes" if d["online"] else "no",
            d["strategy_count"],
            "-" if d["drift"] is None else ("yes" if d["drift"]["in_drift"] else "no"),
            d["last_seen_at"],
        ]
        for d in page["items"]
    ]
    _table(
        f"devices ({page['total']})",
        ["uid", "name", "prefix", "online", "strategies", "drift", "last seen"],
        rows,
    )


def devices_show(
    uid: Annotated[str, typer.Argument(help="The device UID")],
    api: Api = DEFAULT_API,
    token_file: TokenFile = None,
    as_json: Json = False,
) -> None:
    """One device: registry fields, drift, and its reported strategies."""
    device = _call(api, token_file, "GET", f"/api/devices/{uid}")
    if as_json:
        _print_json(device)
        return
    fields = [
        "uid",
        "display_name",
        "site_name",
        "topic_prefix",
        "online",
        "last_seen_at",
        "desired_by",
        "drift",
    ]
    _table(uid, ["field", "value"], [[f, device[f]] for f in fields])
    _table("reported strategies", STRATEGY_COLUMNS, _strategy_rows(device["reported"]))


@strategy_app.command("list")
def strategy_list(
    device: Device, api: Api = DEFAULT_API, token_file: TokenFile = None, as_json: Json = False
) -> None:
    """The device's strategies as it last reported them."""
    strategies = _call(api, token_file, "GET", f"/api/devices/{device}/strategies")
    if as_json:
        _print_json(strategies)
        return
    _table(f"strategies of {device}", STRATEGY_COLUMNS, _strategy_rows(strategies))


@strategy_app.command("show")
def strategy_show(
    strategy_id: StrategyId,
    device: Device,
    api: Api = DEFAULT_API,
    token_file: TokenFile = None,
    as_json: Json = False,
) -> None:
    """One strategy, every field."""
    strategies = _call(api, token_file, "GET", f"/api/devices/{device}/strategies")
    found = next((s for s in strategies if s["id"] == strategy_id), None)
    if found is None:
        typer.echo(f"error: {device} reports no strategy {strategy_id}", err=True)
        raise typer.Exit(code=1)
    if as_json:
        _print_json(found)
        return
    _table(
        f"strategy {strategy_id} of {device}",
        ["field", "value"],
        [[k, v] for k, v in found.items() if k != "devices"],
    )


@strategy_app.command("create")
def strategy_create(
    device: Device,
    data: Data = None,
    data_file: DataFile = None,
    api: Api = DEFAULT_API,
    token_file: TokenFile = None,
    as_json: Json = False,
) -> None:
    """Create a strategy (JSON body as in the protocol's create data)."""
    answer = _call(
        api, token_file, "POST", f"/api/devices/{device}/strategies", json=_body(data, data_file)
    )
    _answer(answer, as_json, "created")


@strategy_app.command("update")
def strategy_update(
    strategy_id: StrategyId,
    device: Device,
    data: Data = None,
    data_file: DataFile = None,
    api: Api = DEFAULT_API,
    token_file: TokenFile = None,
    as_json: Json = False,
) -> None:
    """Update fields of a strategy (absent fields are kept)."""
    body = _body(data, data_file)
    answer = _call(
        api, token_file, "PATCH", f"/api/devices/{device}/strategies/{strategy_id}", json=body
    )
    _answer(answer, as_json, "updated")


@strategy_app.command("delete")
def strategy_delete(
    strategy_id: StrategyId,
    device: Device,
    api: Api = DEFAULT_API,
    token_file: TokenFile = None,
    as_json: Json = False,
) -> None:
    """Delete a strategy."""
    answer = _call(api, token_file, "DELETE", f"/api/devices/{device}/strategies/{strategy_id}")
    _answer(answer, as_json, "deleted")


@strategy_app.command("apply")
def strategy_apply(
    device: Device,
    data: Data = None,
    data_file: DataFile = None,
    api: Api = DEFAULT_API,
    token_file: TokenFile = None,
    as_json: Json = False,
) -> None:
    """Apply a list of strategies in one update_all (matched by id, else by meter and class)."""
    answer = _call(
        api, token_file, "PUT", f"/api/devices/{device}/strategies", json=_body(data, data_file)
    )
    _answer(answer, as_json, "applied")


@strategy_app.command("sync")
def strategy_sync(
    device: Device, api: Api = DEFAULT_API, token_file: TokenFile = None, as_json: Json = False
) -> None:
    """Ask the EMS for its full list now."""
    answer = _call(api, token_file, "POST", f"/api/devices/{device}/sync")
    if as_json:
        _print_json(answer)
        return
    _table(
        f"strategies of {device} (sync {answer['mid']})",
        STRATEGY_COLUMNS,
        _strategy_rows(answer["data"]),
    )


def add_device_commands(devices: typer.Typer) -> None:
    """``gridguard devices list|show``: the platform's registry, beside the field commands."""
    devices.command("list")(devices_list)
    devices.command("show")(devices_show)
