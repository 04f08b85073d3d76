"""docs/architecture.md matches the code: the import graph and the rulings table are current."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridguard.testing.graph import find_cycle, package_edges, replace_sections, sections

pytestmark = pytest.mark.unit

ARCHITECTURE_DOC = Path(__file__).parents[1] / "docs" / "architecture.md"
REGENERATE = ".venv/bin/python -m gridguard.testing.graph --write docs/architecture.md"


def test_no_import_cycle_between_top_level_packages() -> None:
    """Layers only work if no package reaches back up, even through a third one."""
    edges, _ = package_edges()
    assert "control" in edges, "the graph did not find the package"
    assert find_cycle(edges) is None


def test_the_doc_shows_the_current_graph_and_index() -> None:
    """A committed picture of the imports that drifted from the code would mislead."""
    text = ARCHITECTURE_DOC.read_text(encoding="utf-8")
    assert replace_sections(text, sections()) == text, f"out of date: run {REGENERATE}"


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        pytest.param({"a": {"b"}, "b": {"c"}, "c": set()}, None, id="chain"),
        pytest.param({"a": {"b", "c"}, "b": {"c"}, "c": set()}, None, id="diamond"),
        pytest.param({"a": {"b"}, "b": {"a"}}, {"a", "b"}, id="two-cycle"),
        pytest.param({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, {"a", "b", "c"}, id="three"),
    ],
)
def test_find_cycle(edges: dict[str, set[str]], expected: set[str] | None) -> None:
    """The cycle check must fail on a cycle, or the test above could never fail."""
    cycle = find_cycle(edges)
    if expected is None:
        assert cycle is None
    else:
        assert cycle is not None
        assert cycle[0] == cycle[-1]
        assert set(cycle) == expected


def test_replace_sections_fills_markers_and_refuses_a_missing_one() -> None:
    """Only the text between a section's markers is replaced."""
    text = "intro\n<!-- generated: x -->\nold\n<!-- end: x -->\noutro\n"
    assert replace_sections(text, {"x": "new"}) == (
        "intro\n<!-- generated: x -->\nnew\n<!-- end: x -->\noutro\n"
    )
    with pytest.raises(ValueError, match="generated: y"):
        replace_sections(text, {"y": "new"})
