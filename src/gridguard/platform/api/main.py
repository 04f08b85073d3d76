"""The FastAPI application: routers, and the exception tree mapped to HTTP statuses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from gridguard.platform.api.deps import Services, caller_first
from gridguard.platform.api.routes import (
    alarms,
    audit,
    auth,
    commands,
    devices,
    fleet,
    strategies,
    telemetry,
    tokens,
    users,
)
from gridguard.platform.errors import CommandError, PlatformError, TooManyAttemptsError
from gridguard.platform.models import ErrorPublic
from gridguard.platform.web import mount as mount_dashboard
from gridguard.protocol.codec import format_loc

ERRORS = {code: {"model": ErrorPublic} for code in (401, 403, 404, 409, 422, 429, 502, 503, 504)}


async def _platform_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PlatformError)
    body = ErrorPublic(detail=str(exc))
    headers: dict[str, str] = {}
    if isinstance(exc, CommandError):
        body = ErrorPublic(detail=str(exc), mid=exc.mid, code=exc.code)
    if isinstance(exc, TooManyAttemptsError):
        headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=headers)


def describe_request_errors(exc: RequestValidationError) -> str:
    """``field: rule; …`` with the field path as the caller wrote it (no ``body.`` prefix)."""
    parts = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        if loc[:1] == ("body",) or loc[:1] in {("query",), ("path",)}:
            loc = loc[1:]
        parts.append(f"{format_loc(loc) if loc else '(body)'}: {err.get('msg', 'invalid')}")
    return "; ".join(dict.fromkeys(parts))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    try:
        await caller_first(request)  # a refused token is answered first, as it always was
    except PlatformError as refused:
        return await _platform_error(request, refused)
    body = ErrorPublic(detail=describe_request_errors(exc))
    return JSONResponse(body.model_dump(), status_code=422)


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="GridGuard platform",
        version="0.1.0",
        description=(
            "Fleet service for GridGuard EMSs: device registry, strategies over MQTT "
            "(every mutation is one command; the answer is the EMS's), command audit, users."
        ),
        responses=ERRORS,  # type: ignore[arg-type]
    )
    app.state.services = services
    for module in (
        auth,
        devices,
        strategies,
        fleet,
        telemetry,
        alarms,
        commands,
        audit,
        users,
        tokens,
    ):
        app.include_router(module.router)
    app.add_exception_handler(PlatformError, _platform_error)
    app.add_exception_handler(RequestValidationError, _validation_error)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    mount_dashboard(app)
    return app
