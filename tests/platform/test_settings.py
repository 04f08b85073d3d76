"""The settings' rules and the subscriptions they make (shared or plain status/post)."""

from __future__ import annotations

import pytest

from gridguard.platform.ingest import subscriptions
from gridguard.platform.settings import Settings

pytestmark = pytest.mark.unit


def test_status_is_shared_by_default_and_plain_without_a_group() -> None:
    """Two instances split status/post through $share; with no share group (a broker without
    shared subscriptions, as amqtt) it is a plain subscription; results and list/post are
    plain either way."""
    shared = subscriptions(Settings(prefixes=("acme/ems",)))
    assert shared == [
        "acme/ems/+/streaming_overdemand/+/result",
        "acme/ems/+/streaming_overdemand/list/post",
        "$share/gridguard-platform/acme/ems/+/streaming_overdemand/status/post",
    ]
    plain = subscriptions(Settings(prefixes=("acme/ems",), share_group=None))
    assert plain == [
        "acme/ems/+/streaming_overdemand/+/result",
        "acme/ems/+/streaming_overdemand/list/post",
        "acme/ems/+/streaming_overdemand/status/post",
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"share_group": ""}, "share_group '': one topic level, no wildcards"),
        ({"share_group": "a/b"}, "share_group 'a/b': one topic level"),
        ({"share_group": "+"}, "share_group '+': one topic level"),
    ],
)
def test_bad_share_group_is_refused_naming_it(
    changes: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        Settings(**changes)  # type: ignore[arg-type]
    assert str(raised.value).startswith(message)


def test_no_share_group_is_accepted() -> None:
    settings = Settings(share_group=None)
    assert settings.share_group is None
