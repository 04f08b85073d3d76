"""Passwords (argon2 through pwdlib), API tokens (only their SHA-256 is stored), login limits.

A token is ``ggp_`` + 32 random bytes (URL-safe base64): high entropy, so a plain SHA-256 is a
safe and indexable stored form; a password is low entropy, so it gets argon2. Neither is ever
logged: the models that carry them hide them from ``repr``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import deque
from enum import StrEnum

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from gridguard.clock import Clock

TOKEN_PREFIX = "ggp_"  # noqa: S105 - a prefix, not a secret
MIN_PASSWORD_LENGTH = 8
_hasher = PasswordHash((Argon2Hasher(),))
_DUMMY_HASH = _hasher.hash("gridguard-timing-equaliser")


class Role(StrEnum):
    """viewer reads; operator also sends commands; admin also manages users and devices."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return {"viewer": 0, "operator": 1, "admin": 2}[self.value]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


def check_password_rule(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password: must be at least {MIN_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    check_password_rule(password)
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Constant work whether or not the user exists (no user-name oracle by timing)."""
    if password_hash is None:
        _hasher.verify(password, _DUMMY_HASH)
        return False
    return _hasher.verify(password, password_hash)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_hint(token: str) -> str:
    """What may be shown of a token after creation: its first characters."""
    return token[: len(TOKEN_PREFIX) + 4]


class LoginLimiter:
    """At most ``attempts`` failed logins per key (user name, client address) per window."""

    def __init__(self, clock: Clock, *, attempts: int = 5, window_s: float = 60.0) -> None:
        self._clock = clock
        self._attempts = attempts
        self._window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self._clock.monotonic_s()
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self._window_s:
            failures.popleft()
        return failures

    def retry_after_s(self, key: str) -> float:
        """0 when a login may be tried now, else the seconds until one may."""
        failures = self._recent(key)
        if len(failures) < self._attempts:
            return 0.0
        return max(0.0, failures[0] + self._window_s - self._clock.monotonic_s())

    def failed(self, key: str) -> None:
        self._recent(key).append(self._clock.monotonic_s())

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
