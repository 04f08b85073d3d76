"""Templates: every page gets the user, the language's words and the CSRF token."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from gridguard.platform.web.i18n import month_names, pick_language, translator
from gridguard.platform.web.session import LANGUAGE_COOKIE, WebUser

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def _when(moment: datetime | None, time_zone: str = "UTC") -> str:
    if moment is None:
        return "—"
    return moment.astimezone(ZoneInfo(time_zone)).strftime("%Y-%m-%d %H:%M:%S")


def _kw(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}"


templates.env.filters["when"] = _when
templates.env.filters["kw"] = _kw


def language_of(request: Request) -> str:
    return pick_language(request.cookies.get(LANGUAGE_COOKIE))


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def page(
    request: Request,
    template: str,
    user: WebUser | None,
    /,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    language = language_of(request)
    values = {
        "user": user,
        "csrf": user.csrf if user else context.pop("login_csrf", ""),
        "t": translator(language),
        "lang": language,
        "months": month_names(language),
        "path": request.url.path,
        "query": request.url.query,
        **context,
    }
    return templates.TemplateResponse(request, template, values, status_code=status_code)
