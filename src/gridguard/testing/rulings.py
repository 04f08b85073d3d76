"""The index of rulings in the code: every package docstring names the rulings it owns.

A package's ``__init__.py`` docstring (and each top-level module's, e.g. ``vocab.py``) holds
either a block of owned rulings, one per line, the module last::

    Rulings:
        D15  anti-backflow                  backflow.py
        D16  single-phase anti-backflow     phase.py

or a paragraph starting ``Rulings:`` that says it owns none (``Rulings: none owned; ...``).
The module named is a file in that package's own folder. Every ruling D1..D21 (defined in
docs/rulings.md) must be owned exactly once in the whole package: :func:`problems` says what
is wrong with an index. Read from the source files with :mod:`ast`, so nothing is imported.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

RULING_IDS = tuple(f"D{n}" for n in range(1, 22))
"""Every ruling id, in order."""

ENTRY_RE = re.compile(r"^    D(\d+)\s+\S.*\s(\S+\.py)$")
"""One line of a ``Rulings:`` block: id, title, owning module (a file in the same package)."""

BLOCK_START = "Rulings:"


class RulingIndexError(ValueError):
    """A docstring whose ``Rulings:`` block cannot be read; the message names line and rule."""


@dataclass(frozen=True, slots=True)
class Owner:
    """One ruling owned by one module."""

    ruling: str
    title: str
    module: str
    """The owning file, relative to the ``gridguard`` folder: ``control/laws/backflow.py``."""


def _paragraph(lines: list[str], start: int) -> list[tuple[int, str]]:
    """The lines after ``start`` up to the next blank line, with their 1-based numbers."""
    found: list[tuple[int, str]] = []
    for number, line in enumerate(lines[start + 1 :], start=start + 2):
        if not line.strip():
            break
        found.append((number, line))
    return found


def _entry(number: int, line: str, folder: str) -> Owner:
    match = ENTRY_RE.match(line)
    if match is None:
        raise RulingIndexError(f"line {number}: expected '    D<n>  <title>  <module>.py'")
    ruling, name = f"D{int(match.group(1))}", match.group(2)
    if "/" in name:
        raise RulingIndexError(f"line {number}: {name}: must be a file of this package")
    title = line.strip()[len(f"D{match.group(1)}") : -len(name)].strip()
    return Owner(ruling, title, f"{folder}/{name}" if folder else name)


def parse_table(docstring: str, folder: str = "") -> list[Owner] | None:
    """The rulings a docstring's ``Rulings:`` block lists; ``[]`` for "none"; None if absent.

    ``folder`` is the package's folder relative to ``gridguard`` (``control/laws``; ``""`` for
    the top level). Raises :class:`RulingIndexError` for a line that does not fit the format.
    """
    lines = docstring.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(BLOCK_START)]
    if not starts:
        return None
    if len(starts) > 1:
        raise RulingIndexError(f"{len(starts)} '{BLOCK_START}' lines, expected one")
    start = starts[0]
    following = _paragraph(lines, start)
    if lines[start].strip() != BLOCK_START:
        for number, line in following:
            if ENTRY_RE.match(line):
                raise RulingIndexError(f"line {number}: an entry under '{lines[start].strip()}'")
        return []
    if not following:
        raise RulingIndexError(f"line {start + 1}: '{BLOCK_START}' block with no entry")
    return [_entry(number, line, folder) for number, line in following]


def problems(owners: list[Owner]) -> list[str]:
    """What is wrong with an index: rulings unknown, not owned, or owned more than once."""
    counts = Counter(owner.ruling for owner in owners)
    found = [f"{r}: unknown ruling (known: D1..D21)" for r in counts if r not in RULING_IDS]
    for ruling in RULING_IDS:
        if counts[ruling] == 0:
            found.append(f"{ruling}: owned by no module")
        elif counts[ruling] > 1:
            where = ", ".join(o.module for o in owners if o.ruling == ruling)
            found.append(f"{ruling}: owned {counts[ruling]} times ({where})")
    return found


def indexed_files(root: Path) -> list[Path]:
    """Files whose docstring must carry a ``Rulings:`` line: every package's ``__init__.py``
    and every top-level module except ``__main__.py``, in path order."""
    packages = sorted(root.rglob("__init__.py"))
    top = sorted(p for p in root.glob("*.py") if p.name not in {"__init__.py", "__main__.py"})
    return [p for p in packages if "__pycache__" not in p.parts] + top


def module_docstring(path: Path) -> str:
    """A source file's module docstring ('' if none), read without importing it."""
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""


def read_index(root: Path) -> tuple[list[Owner], list[str]]:
    """Every owner listed under ``root`` (the ``gridguard`` folder), and the files without a
    ``Rulings:`` line (relative to ``root``)."""
    owners: list[Owner] = []
    unindexed: list[str] = []
    for path in indexed_files(root):
        folder = path.parent.relative_to(root).as_posix() if path.name == "__init__.py" else ""
        try:
            table = parse_table(module_docstring(path), "" if folder == "." else folder)
        except RulingIndexError as exc:
            raise RulingIndexError(f"{path.relative_to(root).as_posix()}: {exc}") from None
        if table is None:
            unindexed.append(path.relative_to(root).as_posix())
        else:
            owners.extend(table)
    return owners, unindexed


def mentions(docstring: str, ruling: str) -> bool:
    """True when the text names ``ruling`` as a whole word (``D1`` is not in ``D14``)."""
    return re.search(rf"\b{ruling}\b", docstring) is not None
