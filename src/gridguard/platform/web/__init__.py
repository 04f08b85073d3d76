"""The web dashboard, served by the platform process: Jinja2 pages, htmx, uPlot, live SSE.

:func:`mount` adds its routes and static files to the platform's FastAPI app. Vendored files
(``static/vendor``, with their licences): htmx 2.0.11 and uPlot 1.6.32.

Rulings: none owned; it shows what the platform stores.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from gridguard.platform.errors import PlatformError
from gridguard.platform.web import pages, site_pages, strategy_pages
from gridguard.platform.web.render import HERE, is_htmx, page
from gridguard.platform.web.session import LoginRequiredError, WebForbiddenError


async def _login_required(request: Request, _exc: Exception) -> Response:
    target = f"/login?next={request.url.path}"
    if is_htmx(request):
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def _forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WebForbiddenError)
    return page(request, "error.html", None, status_code=403, reason=exc.reason)


def mount(app: FastAPI) -> None:
    """Pages at ``/``, static files at ``/static``; /api errors stay JSON, page errors HTML."""
    for module in (pages, site_pages, strategy_pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(LoginRequiredError, _login_required)
    app.add_exception_handler(WebForbiddenError, _forbidden)
    api_handler = app.exception_handlers[PlatformError]

    async def platform_error(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            answer = api_handler(request, exc)
            return answer if isinstance(answer, Response) else await answer
        assert isinstance(exc, PlatformError)
        return page(request, "error.html", None, status_code=exc.status_code, reason=str(exc))

    app.add_exception_handler(PlatformError, platform_error)
