"""The rulings index: every D1..D21 owned by exactly one module, which names it, and documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import gridguard
from gridguard.testing.rulings import (
    RULING_IDS,
    Owner,
    RulingIndexError,
    mentions,
    module_docstring,
    parse_table,
    problems,
    read_index,
)

pytestmark = pytest.mark.unit

PACKAGE = Path(gridguard.__file__).parent
REPO = Path(__file__).parents[1]
RULINGS_DOC = REPO / "docs" / "rulings.md"
BASES = (REPO, PACKAGE)
"""Where a path in the docs is relative to: the repository, or the package (``edge/agent.py``)."""
OWNERS, UNINDEXED = read_index(PACKAGE)
BY_RULING = {owner.ruling: owner for owner in OWNERS}


def doc_section(ruling: str) -> str | None:
    """The text of ``ruling``'s section in docs/rulings.md (anchor, heading, body), or None."""
    text = RULINGS_DOC.read_text(encoding="utf-8")
    pattern = rf'<a id="{ruling.lower()}"></a>\n## {ruling} \S.*?(?=\n<a id=|\n## |\Z)'
    match = re.search(pattern, text, flags=re.DOTALL)
    return match.group(0) if match else None


def test_every_package_and_top_module_has_a_rulings_line() -> None:
    """A new package without an index would hide the rulings it owns."""
    assert UNINDEXED == []


def test_every_ruling_is_owned_exactly_once() -> None:
    """One place to read first per ruling: none missing, none claimed twice."""
    assert problems(OWNERS) == []


@pytest.mark.parametrize("ruling", RULING_IDS)
def test_owner_exists_names_the_ruling_and_is_documented(ruling: str) -> None:
    """The index points at a real module that cites the ruling, and the doc agrees."""
    owner = BY_RULING[ruling]
    path = PACKAGE / owner.module
    assert path.is_file(), f"{ruling}: {owner.module} does not exist"
    assert mentions(module_docstring(path), ruling), f"{owner.module}'s docstring lacks {ruling}"
    section = doc_section(ruling)
    assert section is not None, f"docs/rulings.md has no '## {ruling} ...' section with its anchor"
    code = re.search(r"^Code: `([^`]+)`", section, flags=re.MULTILINE)
    assert code is not None, f"docs/rulings.md#{ruling.lower()} has no 'Code:' line"
    assert code.group(1) == f"src/gridguard/{owner.module}"


def test_every_module_the_rulings_doc_names_exists() -> None:
    """A page that points readers at moved or deleted files is worse than none."""
    text = RULINGS_DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"`([\w/]+\.py)`", text))
    missing = [n for n in sorted(named) if not any((base / n).is_file() for base in BASES)]
    assert len(named) > len(RULING_IDS)
    assert missing == []


def full_table(lines: list[str] | None = None) -> str:
    """A synthetic docstring owning every ruling once (or the given entry lines)."""
    entries = lines if lines is not None else [f"    {r}  ruling {r}  m{r}.py" for r in RULING_IDS]
    return "A package.\n\nRulings:\n" + "\n".join(entries) + "\n\nMore text.\n"


def test_a_table_parses_into_owners_in_the_package_folder() -> None:
    """Id, title and module come out of the line; the module is placed in the package."""
    doc = full_table(["    D15  anti-backflow      backflow.py", "    D16  phase law  phase.py"])
    assert parse_table(doc, "control/laws") == [
        Owner("D15", "anti-backflow", "control/laws/backflow.py"),
        Owner("D16", "phase law", "control/laws/phase.py"),
    ]
    assert problems(parse_table(full_table()) or []) == []


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        pytest.param(
            [f"    {r}  ruling  m.py" for r in RULING_IDS if r != "D7"],
            ["D7: owned by no module"],
            id="missing",
        ),
        pytest.param(
            [f"    {r}  ruling  m.py" for r in RULING_IDS] + ["    D15  again  other.py"],
            ["D15: owned 2 times (m.py, other.py)"],
            id="owned-twice",
        ),
        pytest.param(
            [f"    {r}  ruling  m.py" for r in RULING_IDS] + ["    D22  new  m.py"],
            ["D22: unknown ruling (known: D1..D21)"],
            id="unknown-id",
        ),
    ],
)
def test_a_bad_index_is_reported(entries: list[str], expected: list[str]) -> None:
    """The check must fail when a ruling is missing, doubled or unknown."""
    owners = parse_table(full_table(entries))
    assert owners is not None
    assert problems(owners) == expected


def test_two_packages_claiming_one_ruling_are_reported() -> None:
    """Ownership is checked over the whole package, not table by table."""
    first = parse_table(full_table(), "edge") or []
    second = parse_table(full_table(["    D5   delivery  session.py"]), "mqtt") or []
    assert problems(first + second) == ["D5: owned 2 times (edge/mD5.py, mqtt/session.py)"]


@pytest.mark.parametrize(
    ("doc", "rule"),
    [
        pytest.param(full_table(["    D15 backflow.py"]), "line 4: expected", id="no-title"),
        pytest.param(full_table(["    D15  title  backflow"]), "line 4: expected", id="not-a-py"),
        pytest.param(full_table(["  D15  title  backflow.py"]), "line 4: expected", id="indent"),
        pytest.param(
            full_table(["    D15  title  laws/backflow.py"]), "must be a file", id="other-folder"
        ),
        pytest.param("A package.\n\nRulings:\n\nText.", "no entry", id="empty-block"),
        pytest.param(
            "A package.\n\nRulings: none owned.\n    D15  title  backflow.py\n",
            "an entry under",
            id="entry-under-none",
        ),
        pytest.param("Rulings: none.\n\nRulings: none.", "2 'Rulings:' lines", id="two-blocks"),
    ],
)
def test_a_malformed_table_is_refused(doc: str, rule: str) -> None:
    """A typo must not silently drop a ruling from the index."""
    with pytest.raises(RulingIndexError, match=rule):
        parse_table(doc)


def test_none_owned_and_absent_are_told_apart() -> None:
    """'Rulings: none' is an index with no entry; no such line is a missing index."""
    assert parse_table("A package.\n\nRulings: none owned; see D5 in\nedge/service.py.") == []
    assert parse_table("A package without an index.") is None


@pytest.mark.parametrize(
    ("text", "ruling", "expected"),
    [
        pytest.param("topics (D1)", "D1", True, id="parenthesised"),
        pytest.param("D15/D16 floors", "D16", True, id="slash-pair"),
        pytest.param("the month (D14)", "D1", False, id="prefix-of-another-id"),
        pytest.param("D2-D13", "D5", False, id="range-is-not-a-mention"),
    ],
)
def test_mentions_needs_the_whole_id(text: str, ruling: str, *, expected: bool) -> None:
    """An owner must name its ruling; D14 does not name D1."""
    assert mentions(text, ruling) is expected
