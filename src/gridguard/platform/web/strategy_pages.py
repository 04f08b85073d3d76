"""Strategies of one device: the reported table and the create, edit, delete, replace-all and
reconcile forms. Each form is one platform command through the REST routes' own functions; the
answer (applied, or rejected with the EMS's message at the field it names) replaces the form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import TypeAdapter, ValidationError

from gridguard.platform import devices
from gridguard.platform.api.deps import ServicesDep
from gridguard.platform.api.routes import strategies as api
from gridguard.platform.errors import CommandError, CommandRejectedError, PlatformError
from gridguard.platform.models import CommandAnswer
from gridguard.platform.web.render import is_htmx, page
from gridguard.platform.web.session import Operator, Viewer
from gridguard.platform.web.views import (
    changed_fields,
    ems_error,
    field_errors,
    item_errors,
    parse_strategy_form,
)
from gridguard.protocol.models import (
    StrategyCreate,
    StrategyFields,
    StrategyItem,
    StreamingOverDemand,
)

router = APIRouter(include_in_schema=False)
_ITEMS = TypeAdapter(list[StrategyItem])
NEW = "new."


@dataclass
class Outcome:
    """What a form shows after it was sent."""

    form: str
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    answer: CommandAnswer | None = None
    message: str = ""

    @property
    def state(self) -> str:
        if self.answer is not None:
            return "applied"
        return "rejected" if self.errors or self.message else ""


def _reported(row: devices.Row) -> list[StreamingOverDemand]:
    return [StreamingOverDemand.model_validate(s) for s in row.last_list or []]


async def _context(services: ServicesDep, uid: str) -> dict[str, Any]:
    row = await devices.get_device(services.db, uid=uid)
    public = devices.public(
        row,
        now=services.clock.now(),
        offline_after_intervals=services.settings.offline_after_intervals,
    )
    return {"device": public, "reported": _reported(row), "raw": row.last_list or []}


@router.get("/devices/{uid}/strategies")
async def strategies(
    request: Request, services: ServicesDep, user: Viewer, uid: str
) -> HTMLResponse:
    return page(request, "strategies.html", user, **await _context(services, uid), outcome=None)


@router.get("/devices/{uid}/strategies/table")
async def strategies_table(
    request: Request, services: ServicesDep, user: Viewer, uid: str
) -> HTMLResponse:
    return page(request, "_strategies_table.html", user, **await _context(services, uid))


async def _send(outcome: Outcome, send: Any) -> Outcome:
    try:
        outcome.answer = await send()
    except CommandRejectedError as exc:
        outcome.errors = ems_error(str(exc))
    except CommandError as exc:
        outcome.message = f"{exc} (mid {exc.mid})"
    except PlatformError as exc:
        outcome.message = str(exc)
    return outcome


def _full_page(outcome: Outcome, context: dict[str, Any]) -> str:
    if outcome.form.startswith("edit-"):
        strategy_id = int(outcome.form[5:])
        context["strategy_id"] = strategy_id
        context["strategy_values"] = next(
            (s for s in context["raw"] if s.get("id") == strategy_id), {}
        )
        return "edit.html"
    return "replace.html" if outcome.form == "replace" else "strategies.html"


async def _answer(
    request: Request, services: ServicesDep, user: Operator, uid: str, outcome: Outcome
) -> Response:
    context = await _context(services, uid)
    if is_htmx(request):
        name = "_replace_form.html" if outcome.form == "replace" else "_strategy_form.html"
        return page(request, name, user, **context, outcome=outcome)
    if outcome.state == "applied":
        return RedirectResponse(f"/devices/{uid}/strategies", status_code=303)
    name = _full_page(outcome, context)
    return page(request, name, user, status_code=422, **context, outcome=outcome)


@router.get("/devices/{uid}/strategies/{strategy_id}/edit")
async def edit_page(
    request: Request, services: ServicesDep, user: Viewer, uid: str, strategy_id: int
) -> HTMLResponse:
    context = await _context(services, uid)
    name = _full_page(Outcome(f"edit-{strategy_id}"), context)
    return page(request, name, user, **context, outcome=None)


@router.get("/devices/{uid}/strategies/replace")
async def replace_page(
    request: Request, services: ServicesDep, user: Viewer, uid: str
) -> HTMLResponse:
    return page(request, "replace.html", user, **await _context(services, uid), outcome=None)


async def _form(request: Request) -> dict[str, str]:
    """The submitted fields; of a repeated name (a toggle's hidden 2, then its 1) the last."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


@router.post("/devices/{uid}/strategies/create")
async def create(request: Request, services: ServicesDep, user: Operator, uid: str) -> Response:
    values = parse_strategy_form(await _form(request))
    outcome = Outcome("create", values)
    try:
        body = StrategyCreate.model_validate(values)
    except ValidationError as exc:
        outcome.errors = field_errors(exc.errors())
    else:
        await _send(outcome, lambda: api.send_create(services, user.principal, uid=uid, body=body))
    return await _answer(request, services, user, uid, outcome)


@router.post("/devices/{uid}/strategies/{strategy_id}/edit")
async def edit(
    request: Request, services: ServicesDep, user: Operator, uid: str, strategy_id: int
) -> Response:
    values = parse_strategy_form(await _form(request))
    row = await devices.get_device(services.db, uid=uid)
    current: dict[str, Any] = next(
        (s for s in row.last_list or [] if s.get("id") == strategy_id), {}
    )
    outcome = Outcome(f"edit-{strategy_id}", values)
    changes = changed_fields(values, current)
    try:
        body = StrategyFields.model_validate(changes)
    except ValidationError as exc:
        outcome.errors = field_errors(exc.errors())
    else:
        if not changes:
            outcome.message = "nothing_changed"
        else:
            await _send(
                outcome,
                lambda: api.send_update(
                    services, user.principal, uid=uid, strategy_id=strategy_id, body=body
                ),
            )
    return await _answer(request, services, user, uid, outcome)


@router.post("/devices/{uid}/strategies/{strategy_id}/delete")
async def delete(
    request: Request, services: ServicesDep, user: Operator, uid: str, strategy_id: int
) -> Response:
    outcome = Outcome(f"delete-{strategy_id}")
    await _send(
        outcome,
        lambda: api.send_delete(services, user.principal, uid=uid, strategy_id=strategy_id),
    )
    return await _answer(request, services, user, uid, outcome)


def replace_items(form: dict[str, str], ids: list[int]) -> list[dict[str, Any]]:
    """One item per reported strategy (``s{id}.``), plus the new one when its box is ticked."""
    items = [parse_strategy_form(form, f"s{i}.") | {"id": i} for i in ids]
    if form.get("include_new"):
        items.append(parse_strategy_form(form, NEW))
    return items


@router.post("/devices/{uid}/strategies/replace")
async def replace_all(
    request: Request, services: ServicesDep, user: Operator, uid: str
) -> Response:
    form = await _form(request)
    row = await devices.get_device(services.db, uid=uid)
    ids = [s["id"] for s in row.last_list or []]
    items = replace_items(form, ids)
    outcome = Outcome("replace", {"items": items})
    try:
        body = _ITEMS.validate_python(items)
        if not body:
            outcome.message = "nothing_changed"
    except ValidationError as exc:
        prefixes = [f"s{i}." for i in ids] + [NEW]
        outcome.errors = {
            prefixes[min(index, len(ids))] + key: rule
            for index, key, rule in item_errors(exc.errors())
        }
    else:
        if body:
            await _send(
                outcome,
                lambda: api.send_replace(services, user.principal, uid=uid, body=body),
            )
    return await _answer(request, services, user, uid, outcome)


@router.post("/devices/{uid}/reconcile")
async def reconcile(request: Request, services: ServicesDep, user: Operator, uid: str) -> Response:
    outcome = Outcome("reconcile")
    await _send(outcome, lambda: api.send_reconcile(services, user.principal, uid=uid))
    return await _answer(request, services, user, uid, outcome)
