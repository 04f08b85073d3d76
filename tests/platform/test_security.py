"""Passwords, tokens and the login limit (a fake clock moves the window)."""

from __future__ import annotations

import pytest

from gridguard.clock import FakeClock
from gridguard.platform.security import (
    LoginLimiter,
    Role,
    hash_password,
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


def test_limiter_blocks_after_the_failures_until_the_window_passes() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(clock, attempts=3, window_s=60)
    for _ in range(3):
        assert limiter.retry_after_s("amy") == 0
        limiter.failed("amy")
        clock.advance(10)
    assert limiter.retry_after_s("amy") == pytest.approx(30)
    assert limiter.retry_after_s("bob") == 0  # keys are separate
    clock.advance(30)
    assert limiter.retry_after_s("amy") == 0  # the oldest failure left the window


def test_success_clears_the_failures() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(clock, attempts=2, window_s=60)
    limiter.failed("amy")
    limiter.succeeded("amy")
    limiter.failed("amy")
    assert limiter.retry_after_s("amy") == 0
