"""The dashboard's static files: vendored (pinned, licensed), served, and within the budget."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from gridguard.platform.web.render import HERE

pytestmark = pytest.mark.unit

STATIC = HERE / "static"
BUDGET_BYTES = 150 * 1024
"""All JS and CSS a page loads, gzipped."""


def loaded_by_pages() -> list[Path]:
    base = (HERE / "templates" / "base.html").read_text(encoding="utf-8")
    return [STATIC / p for p in re.findall(r'(?:src|href)="/static/([^"]+)"', base)]


def test_every_file_a_page_loads_is_shipped_and_vendored_with_its_licence() -> None:
    files = loaded_by_pages()
    assert {f.suffix for f in files} == {".js", ".css"}
    assert all(f.is_file() for f in files)
    for name in ("htmx", "uPlot"):
        assert (STATIC / "vendor" / f"{name}-LICENSE.txt").is_file()
        assert any(re.search(rf"{name}-\d+\.\d+\.\d+", f.name) for f in files), "pinned version"


def test_js_and_css_stay_within_the_budget() -> None:
    sizes = {f.name: len(gzip.compress(f.read_bytes(), 9)) for f in loaded_by_pages()}
    total = sum(sizes.values())
    print(f"\nJS + CSS gzipped: {total / 1024:.1f} KB of {BUDGET_BYTES // 1024} KB: {sizes}")  # noqa: T201
    assert total <= BUDGET_BYTES
