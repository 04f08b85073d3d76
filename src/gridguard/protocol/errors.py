"""The protocol's exception tree.

ProtocolError            anything a peer sent that we cannot accept (-> 400, D3)
├── TopicError           a topic that does not fit D1
├── PayloadTooLargeError      over the size limit (D6), refused unparsed
├── JsonSyntaxError      not JSON even leniently (D4), with line and column
└── InvalidMessageError       JSON, but a field breaks a rule; names field path and rule
"""

from __future__ import annotations


class ProtocolError(ValueError):
    """Input from a peer that we refuse; ``str(exc)`` is the readable ``msg`` (D3).

    ``mid`` and ``trace_id`` are what could be recovered from the input, so the 400 reply can
    still name the command it answers.
    """

    def __init__(self, msg: str, *, mid: str | None = None, trace_id: str | None = None) -> None:
        super().__init__(msg)
        self.mid = mid
        self.trace_id = trace_id


class TopicError(ProtocolError):
    """A topic that does not fit ``{prefix}/{device}/streaming_overdemand/{op}/{dir}``."""


class PayloadTooLargeError(ProtocolError):
    """A payload over the configured size limit (D6)."""


class JsonSyntaxError(ProtocolError):
    """A payload that is not JSON, even allowing trailing commas (D4)."""


class InvalidMessageError(ProtocolError):
    """A message whose fields break the rules; the message names each field path and rule."""
