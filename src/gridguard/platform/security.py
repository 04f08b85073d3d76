"""Passwords (argon2 through pwdlib), API tokens (only their SHA-256 is stored), login limits.

A token is ``ggp_`` + 32 random bytes (URL-safe base64): high entropy, so a plain SHA-256 is a
safe and indexable stored form; a password is low entropy, so it gets argon2. Neither is ever
logged: the models that carry them hide them from ``repr``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

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
    """At most ``attempts`` failed logins per key (user name, client address) per window.

    The policy only: the failures themselves are rows in the database (``login_failures``), so
    every instance of the platform counts the same ones and a second instance is no second
    chance for a guesser.
    """

    def __init__(self, *, attempts: int = 5, window_s: float = 60.0) -> None:
        self.attempts = attempts
        self.window_s = window_s

    def window_start(self, now: datetime) -> datetime:
        """Failures at or before this moment no longer count."""
        return now - timedelta(seconds=self.window_s)

    def retry_after_s(self, failures_at: Sequence[datetime], now: datetime) -> float:
        """0 when a login may be tried now, else the seconds until one may.

        ``failures_at``: this key's failed logins inside the window, oldest first.
        """
        recent = sorted(at for at in failures_at if at > self.window_start(now))
        if len(recent) < self.attempts:
            return 0.0
        # The attempt opens again when enough of the oldest failures have left the window.
        opens_at = recent[len(recent) - self.attempts] + timedelta(seconds=self.window_s)
        return max(0.0, (opens_at - now).total_seconds())


def login_key(name: str, client: str) -> str:
    """What a failed login is counted under: a hash, so that a password typed into the user
    name field is never stored."""
    return hashlib.sha256(f"{name}\x00{client}".encode()).hexdigest()
