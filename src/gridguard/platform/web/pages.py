"""Dashboard pages: login, fleet, site, demand, commands, alarms, and the live event stream."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from gridguard.platform import alarm_service, commands, devices, users
from gridguard.platform.api.deps import ServicesDep
from gridguard.platform.errors import PlatformError, TooManyAttemptsError
from gridguard.platform.web import queries
from gridguard.platform.web.i18n import pick_language
from gridguard.platform.web.live import Cursor, Poller, stream
from gridguard.platform.web.render import is_htmx, page
from gridguard.platform.web.session import (
    LANGUAGE_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Operator,
    Viewer,
    new_login_csrf,
    submitted_csrf,
)

router = APIRouter(include_in_schema=False)
PAGE = 50


def safe_next(target: str | None) -> str:
    """Only a path on this site (no ``//host``, no scheme)."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/fleet"


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/fleet", status_code=303)


@router.get("/lang")
async def language(
    set_to: Annotated[str, Query(alias="set")], next_path: Annotated[str, Query(alias="next")] = ""
) -> RedirectResponse:
    response = RedirectResponse(safe_next(next_path), status_code=303)
    response.set_cookie(LANGUAGE_COOKIE, pick_language(set_to), max_age=365 * 86400, samesite="lax")
    return response


@router.get("/login")
async def login_form(
    request: Request, next_path: Annotated[str, Query(alias="next")] = ""
) -> Response:
    csrf = request.cookies.get(LOGIN_CSRF_COOKIE) or new_login_csrf()
    response = page(request, "login.html", None, login_csrf=csrf, next=safe_next(next_path))
    response.set_cookie(LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="strict")
    return response


@router.post("/login")
async def login(
    request: Request,
    services: ServicesDep,
    name: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",
    next_path: Annotated[str, Form(alias="next")] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    error = ""
    if not expected or csrf != expected:
        error = "csrf"
    else:
        client = request.client.host if request.client else "unknown"
        try:
            created = await users.login(
                services.db,
                services.limiter,
                name=name,
                password=password,
                client=client,
                now=services.clock.now(),
            )
        except TooManyAttemptsError as exc:
            error = str(exc)
        except PlatformError:
            error = "wrong_login"
        else:
            response = RedirectResponse(safe_next(next_path), status_code=303)
            response.set_cookie(SESSION_COOKIE, created.token, httponly=True, samesite="lax")
            return response
    return page(
        request,
        "login.html",
        None,
        status_code=401,
        login_csrf=expected or new_login_csrf(),
        next=safe_next(next_path),
        error=error,
        name=name,
    )


@router.post("/logout")
async def logout(services: ServicesDep, user: Viewer, request: Request) -> Response:
    if await submitted_csrf(request) == user.csrf:
        await users.revoke_token(
            services.db,
            token_id=user.principal.token_id,
            owner_id=None,
            now=services.clock.now(),
        )
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/fleet")
async def fleet(
    request: Request,
    services: ServicesDep,
    user: Viewer,
    q: str = "",
    status: str = "",
    alarms: str = "",
    drift: str = "",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    selection = queries.FleetFilter(
        q=q.strip(),
        online={"online": True, "offline": False}.get(status),
        alarms_only=bool(alarms),
        drift_only=bool(drift),
        offset=offset,
        limit=PAGE,
    )
    result = await queries.fleet_page(
        services.db,
        now=services.clock.now(),
        offline_after_intervals=services.settings.offline_after_intervals,
        selection=selection,
    )
    name = "_fleet_table.html" if is_htmx(request) else "fleet.html"
    filters = {"q": q, "status": status, "alarms": alarms, "drift": drift}
    return page(request, name, user, fleet=result, filters=filters)


@router.get("/commands")
async def command_list(
    request: Request,
    services: ServicesDep,
    user: Viewer,
    device: str = "",
    who: str = "",
    state: str = "",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    found = await commands.list_commands(
        services.db,
        device_uid=device or None,
        user_name=who or None,
        state=state or None,
        offset=offset,
        limit=PAGE,
    )
    name = "_commands_table.html" if is_htmx(request) else "commands.html"
    filters = {"device": device, "who": who, "state": state}
    return page(request, name, user, found=found, filters=filters)


@router.get("/alarms")
async def alarm_list(
    request: Request,
    services: ServicesDep,
    user: Viewer,
    device: str = "",
    view: str = "open",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    found = await alarm_service.list_alarms(
        services.db, device_uid=device or None, active=view != "past", offset=offset, limit=PAGE
    )
    name = "_alarms_table.html" if is_htmx(request) else "alarms.html"
    return page(request, name, user, found=found, filters={"device": device, "view": view})


@router.post("/alarms/{alarm_id}/ack")
async def acknowledge(
    request: Request, services: ServicesDep, user: Operator, alarm_id: int
) -> Response:
    alarm = await alarm_service.acknowledge(
        services.db, alarm_id=alarm_id, by=user.name, now=services.clock.now()
    )
    if is_htmx(request):
        return page(request, "_alarm_row.html", user, alarm=alarm)
    return RedirectResponse(request.headers.get("referer") or "/alarms", status_code=303)


@router.get("/events")
async def events(
    request: Request, services: ServicesDep, _user: Viewer, device: str | None = None
) -> StreamingResponse:
    """Live changes as Server-Sent Events (resumes from ``Last-Event-ID``)."""
    if device is not None:
        await devices.get_device(services.db, uid=device)
    cursor = Cursor.parse(request.headers.get("last-event-id"), services.clock.now())
    poller = Poller(services.db, device, cursor, {})
    headers: dict[str, Any] = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        stream(poller, services.clock), media_type="text/event-stream", headers=headers
    )
