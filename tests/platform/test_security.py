"""Passwords, tokens and the login limit (a table of failure times against a moment)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gridguard.platform.security import (
    LoginLimiter,
    Role,
    hash_password,
    login_key,
    new_token,
    token_hash,
    token_hint,
    verify_password,
)

pytestmark = pytest.mark.unit


def test_password_hash_is_argon2_and_verifies() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2")
    assert "correct horse" not in stored
    assert verify_password("correct horse", stored)
    assert not verify_password("wrong horse!", stored)
    assert not verify_password("correct horse", None)  # unknown user: same work, no oracle


def test_short_password_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 8 characters"):
        hash_password("short")


def test_tokens_are_random_and_only_hashes_are_kept() -> None:
    first, second = new_token(), new_token()
    assert first != second
    assert first.startswith("ggp_")
    assert len(token_hash(first)) == 64
    assert first not in token_hash(first)
    assert token_hint(first) == first[:8]


@pytest.mark.parametrize(
    ("role", "needed", "allowed"),
    [
        (Role.VIEWER, Role.OPERATOR, False),
        (Role.OPERATOR, Role.OPERATOR, True),
        (Role.ADMIN, Role.OPERATOR, True),
        (Role.OPERATOR, Role.ADMIN, False),
    ],
    ids=["viewer-no", "operator-yes", "admin-above", "operator-not-admin"],
)
def test_roles_rank(role: Role, needed: Role, allowed: bool) -> None:
    assert role.allows(needed) is allowed


T0 = datetime(2026, 12, 1, 8, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("failures_s", "now_s", "retry_after_s"),
    [
        ([], 0, 0.0),
        ([0, 10], 20, 0.0),  # fewer than the attempts
        ([0, 10, 20], 30, 30.0),  # blocked until the oldest leaves the window (t = 60)
        ([0, 10, 20], 60, 0.0),  # it has left
        ([0, 10, 20, 30], 61, 9.0),  # four failures: the second oldest must leave too
        ([20, 0, 10], 30, 30.0),  # order does not matter
        ([-100, 10, 20], 30, 0.0),  # outside the window: not counted
    ],
)
def test_limiter_blocks_after_the_failures_until_the_window_passes(
    failures_s: list[float], now_s: float, retry_after_s: float
) -> None:
    limiter = LoginLimiter(attempts=3, window_s=60)
    failures = [at(s) for s in failures_s]
    assert limiter.retry_after_s(failures, at(now_s)) == pytest.approx(retry_after_s)


def test_the_login_key_is_a_hash_of_name_and_client() -> None:
    key = login_key("amy", "127.0.0.1")
    assert len(key) == 64
    assert "amy" not in key
    assert key != login_key("amy", "127.0.0.2")
    assert key != login_key("amy1", "27.0.0.1")  # the separator keeps the parts apart
