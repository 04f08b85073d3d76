"""Browser sessions: a platform login token in an HttpOnly cookie, a CSRF token per session.

The session cookie holds a token made by the platform's own login (only its hash is stored), so
logging out revokes it and a changed password ends it. The CSRF token is an HMAC of the session
token: the page embeds it in every form (and htmx sends it as ``X-CSRF-Token``); a cross-site
page can read neither. The login form, before any session, uses a double-submit cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from gridguard.platform.api.deps import ServicesDep
from gridguard.platform.errors import UnauthorizedError
from gridguard.platform.security import Role
from gridguard.platform.users import Principal, authenticate

SESSION_COOKIE = "gg_session"
LOGIN_CSRF_COOKIE = "gg_login_csrf"
LANGUAGE_COOKIE = "gg_lang"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
_CSRF_KEY = b"gridguard-dashboard-csrf"


class LoginRequiredError(Exception):
    """No valid session: the page sends the browser to the login form."""


class WebForbiddenError(Exception):
    """A valid session without the role, or a form without a valid CSRF token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def csrf_of(session_token: str) -> str:
    return hmac.new(_CSRF_KEY, session_token.encode(), hashlib.sha256).hexdigest()[:32]


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class WebUser:
    principal: Principal
    csrf: str

    @property
    def name(self) -> str:
        return self.principal.name

    @property
    def can_operate(self) -> bool:
        return self.principal.role.allows(Role.OPERATOR)


async def web_user(request: Request, services: ServicesDep) -> WebUser:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise LoginRequiredError
    try:
        principal = await authenticate(services.db, token=token)
    except UnauthorizedError:
        raise LoginRequiredError from None
    return WebUser(principal, csrf_of(token))


async def submitted_csrf(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    form = await request.form()
    value = form.get(CSRF_FIELD)
    return value if isinstance(value, str) else ""


async def operator(request: Request, user: Annotated[WebUser, Depends(web_user)]) -> WebUser:
    """A POST by an operator or admin carrying the session's CSRF token."""
    if not hmac.compare_digest(await submitted_csrf(request), user.csrf):
        raise WebForbiddenError("csrf")
    if not user.can_operate:
        raise WebForbiddenError("forbidden")
    return user


Viewer = Annotated[WebUser, Depends(web_user)]
Operator = Annotated[WebUser, Depends(operator)]
