"""A small synchronous client of the platform's REST API, for the command line.

Errors leave as :class:`ApiError` only, with a readable message: the HTTP status, the API's
``detail`` and the command's mid when there is one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Self

import httpx

DEFAULT_API = "http://127.0.0.1:8080"


class ApiError(RuntimeError):
    """The API refused the call, or could not be reached."""


def read_token(token_file: Path | None) -> str | None:
    """``GRIDGUARD_TOKEN``, else the first line of ``token_file`` (or ``GRIDGUARD_TOKEN_FILE``)."""
    token = os.environ.get("GRIDGUARD_TOKEN")
    if token:
        return token.strip()
    path = token_file or (Path(p) if (p := os.environ.get("GRIDGUARD_TOKEN_FILE")) else None)
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8").strip().splitlines()[0]
    except (OSError, IndexError) as exc:
        raise ApiError(f"cannot read a token from {path}: {exc}") from exc


def _explain(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text[:200]}
    detail = body.get("detail") if isinstance(body, dict) else None
    text = f"{response.status_code} {response.reason_phrase}: {detail or 'no detail'}"
    if isinstance(body, dict) and body.get("mid"):
        text += f" (command {body['mid']})"
    return text


class PlatformApi:
    def __init__(self, base_url: str, token: str | None, *, timeout_s: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout_s)
        self._base_url = base_url

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach the platform at {self._base_url}: {exc}") from exc
        if response.status_code >= 400:
            raise ApiError(_explain(response))
        return response.json() if response.content else None
