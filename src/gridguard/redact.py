"""Secrets out of text before it is logged or sent: every ``scheme://user:password@`` in a
string keeps its user and loses its password (``mqtt://ems:***@host``), and so do
``password=...`` query and key-value parameters (PostgreSQL DSNs).

Rulings: none owned.
"""

from __future__ import annotations

import re

MASK = "***"
_USERINFO_RE = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^/@:\s]*):[^@\s/]*@")
_PARAM_RE = re.compile(r"(?P<head>\b(?:password|passwd|pwd)\s*=\s*)[^&\s;]+", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with every URL password and ``password=`` value replaced by ``***``."""
    if "@" not in text and "=" not in text:
        return text
    text = _USERINFO_RE.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
    return _PARAM_RE.sub(lambda m: f"{m.group('head')}{MASK}", text)
