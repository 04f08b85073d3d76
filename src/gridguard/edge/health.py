"""What the agent says about itself: serving, or degraded and why (a refused subscription, a
quarantined strategy). Logged when it changes and carried on the status topic."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

log = logging.getLogger("gridguard.edge")

SUBACK_FAILURE = 0x80
"""A SUBACK return code at or above this refuses the subscription (MQTT 3.1.1 0x80, v5 >= 0x80)."""


def refused_ops(ops: Sequence[str], granted: Iterable[Any]) -> list[str]:
    """The ops whose subscription the broker refused, from a SUBACK's codes (ints or paho
    ReasonCodes) in the order subscribed."""
    return [
        op
        for op, code in zip(ops, granted, strict=True)
        if int(getattr(code, "value", code)) >= SUBACK_FAILURE
    ]


class Health:
    """The agent's state: ``serving`` unless something keeps it from serving fully."""

    def __init__(self) -> None:
        self.refused: set[str] = set()
        self.quarantined: list[int] = []

    @property
    def state(self) -> str:
        return "degraded" if self.refused or self.quarantined else "serving"

    def subscriptions(self, refused: Iterable[str], granted: Iterable[str]) -> bool:
        """Record a SUBACK; True if the set of refused ops changed (logged, with an event)."""
        before = set(self.refused)
        self.refused = (self.refused - set(granted)) | set(refused)
        if self.refused == before:
            return False
        if self.refused:
            event = {"event": "subscription_refused", "ops": sorted(self.refused)}
            log.error(json.dumps(event))
            log.warning(
                "degraded: the broker refused the command subscriptions of %s; those commands "
                "go unanswered until a retry succeeds",
                ", ".join(sorted(self.refused)),
            )
        else:
            log.info("every command subscription granted; serving")
        return True

    def document(self) -> dict[str, Any]:
        """The agent's part of the status document."""
        return {
            "state": self.state,
            "refused_subscriptions": sorted(self.refused),
            "quarantined_strategies": list(self.quarantined),
        }
