"""Topic build/parse for the three prefix schemes of D1."""

from __future__ import annotations

from typing import Any

import pytest

from gridguard.protocol.errors import TopicError
from gridguard.protocol.topics import (
    Direction,
    Op,
    Topic,
    TopicScheme,
    build_topic,
    command_filter,
    parse_topic,
)

pytestmark = pytest.mark.unit

WUDUN = TopicScheme("wudun", product_key="pk123")
USER = TopicScheme("user", tenant="acme")
CUSTOM = TopicScheme("custom", prefix="v1/gridguard")
DEEP = TopicScheme("custom", prefix="site/cn/sh/ems")


@pytest.mark.parametrize(
    ("scheme", "op", "direction", "expected"),
    [
        (WUDUN, "list", "post", "v1/wudun/pk123/dev1/streaming_overdemand/list/post"),
        (WUDUN, "create", "command", "v1/wudun/pk123/dev1/streaming_overdemand/create/command"),
        (USER, "sync", "result", "v1/user/acme/dev1/streaming_overdemand/sync/result"),
        (
            USER,
            "update_all",
            "command",
            "v1/user/acme/dev1/streaming_overdemand/update_all/command",
        ),
        (CUSTOM, "delete", "result", "v1/gridguard/dev1/streaming_overdemand/delete/result"),
        (DEEP, "update", "command", "site/cn/sh/ems/dev1/streaming_overdemand/update/command"),
        (CUSTOM, "status", "post", "v1/gridguard/dev1/streaming_overdemand/status/post"),
    ],
    ids=[
        "wudun-list",
        "wudun-create",
        "user-sync",
        "user-update-all",
        "custom-delete",
        "custom-multi-level",
        "status-extension",
    ],
)
def test_build_and_parse_round_trip(
    scheme: TopicScheme, op: Op, direction: Direction, expected: str
) -> None:
    """Build gives the spec's topic string; parse gives back the same parts."""
    built = build_topic(scheme, "dev1", op, direction)
    assert built == expected
    parsed = parse_topic(built)
    assert parsed == Topic(scheme, "dev1", op, direction)


def test_parse_recognises_scheme_from_prefix() -> None:
    """v1/wudun/X and v1/user/X are their schemes; anything else is custom."""
    assert parse_topic("v1/wudun/k/d/streaming_overdemand/list/post").scheme.scheme == "wudun"
    assert parse_topic("v1/user/t/d/streaming_overdemand/list/post").scheme.scheme == "user"
    custom = parse_topic("v1/user/t/x/d/streaming_overdemand/list/post").scheme
    assert custom == TopicScheme("custom", prefix="v1/user/t/x")


@pytest.mark.parametrize(
    ("topic", "msg"),
    [
        (
            "a/b/c",
            (
                "topic 'a/b/c': expected {prefix}/{device}/streaming_overdemand/{op}/{dir}, "
                "got only 3 levels"
            ),
        ),
        (
            "p/d/overdemand/list/post",
            (
                "topic 'p/d/overdemand/list/post': expected "
                "'streaming_overdemand' before the op, got 'overdemand'"
            ),
        ),
        (
            "p/d/streaming_overdemand/list/command",
            (
                "topic 'p/d/streaming_overdemand/list/command': "
                "list/command is not an op/dir of streaming_overdemand"
            ),
        ),
        (
            "p/d/streaming_overdemand/remove/command",
            (
                "topic 'p/d/streaming_overdemand/remove/command'"
                ": remove/command is not an op/dir of "
                "streaming_overdemand"
            ),
        ),
        (
            "p//d/streaming_overdemand/list/post",
            "topic 'p//d/streaming_overdemand/list/post': the prefix has an empty level",
        ),
        ("p/+/streaming_overdemand/list/post", "device uid '+': must not contain '/', '+' or '#'"),
    ],
    ids=[
        "too-short",
        "wrong-service",
        "list-has-no-command",
        "unknown-op",
        "empty-level",
        "wildcard-device",
    ],
)
def test_parse_errors_say_why(topic: str, msg: str) -> None:
    """A topic that does not fit D1 gives an error naming the problem."""
    with pytest.raises(TopicError) as caught:
        parse_topic(topic)
    assert str(caught.value) == msg


@pytest.mark.parametrize(
    ("kwargs", "msg"),
    [
        ({"scheme": "wudun"}, "scheme 'wudun' needs a non-empty product_key"),
        (
            {"scheme": "user", "tenant": "a/b"},
            "tenant 'a/b': must be a single topic level (no '/')",
        ),
        (
            {"scheme": "custom", "prefix": "v1/#"},
            "prefix 'v1/#': must not contain MQTT wildcards + or #",
        ),
        ({"scheme": "custom", "prefix": "/v1"}, "prefix '/v1': must not have empty topic levels"),
    ],
    ids=["missing-product-key", "tenant-with-slash", "prefix-wildcard", "prefix-leading-slash"],
)
def test_scheme_parameters_checked(kwargs: dict[str, Any], msg: str) -> None:
    """Scheme parameters that would make a broken topic are refused up front."""
    with pytest.raises(TopicError) as caught:
        TopicScheme(**kwargs)
    assert str(caught.value) == msg


def test_command_filter_is_exact() -> None:
    """The EMS subscribes to its own device's command topics only (no wildcards)."""
    assert command_filter(USER, "dev1", "create") == (
        "v1/user/acme/dev1/streaming_overdemand/create/command"
    )


def test_build_refuses_result_for_list() -> None:
    """list has only a post topic."""
    with pytest.raises(TopicError):
        build_topic(CUSTOM, "dev1", "list", "result")
