"""The package import graph from the real code, and the generated parts of docs/architecture.md.

``python -m gridguard.testing.graph`` prints the generated sections; ``--write FILE`` replaces
them in FILE between their markers (``<!-- generated: NAME -->`` ... ``<!-- end: NAME -->``).
The graph comes from grimp (import-linter's graph library), reading the source without
importing it; ``TYPE_CHECKING`` imports count, as they do for the contracts.
"""

from __future__ import annotations

import argparse
import graphlib
import re
import sys
from collections import defaultdict
from pathlib import Path

import grimp

from gridguard.testing.rulings import Owner, read_index

ROOT = "gridguard"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def unit(module: str) -> str | None:
    """The top-level package or module of ``gridguard`` that ``module`` belongs to."""
    parts = module.split(".")
    if parts[0] != ROOT or len(parts) < 2:
        return None
    return parts[1]


def package_edges() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Top-level unit -> the units it imports, and unit -> the third-party libraries it uses."""
    graph = grimp.build_graph(ROOT, include_external_packages=True, cache_dir=None)
    edges: dict[str, set[str]] = defaultdict(set)
    libraries: dict[str, set[str]] = defaultdict(set)
    for module in graph.modules:
        source = unit(module)
        if source is None:
            continue
        edges[source]  # every unit appears, even one that imports nothing of ours
        for imported in graph.find_modules_directly_imported_by(module):
            target = unit(imported)
            top = imported.split(".")[0]
            if target is not None and target != source:
                edges[source].add(target)
            elif top != ROOT and top not in sys.stdlib_module_names:
                libraries[source].add(top)
    return dict(edges), dict(libraries)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle between the units (as a closed path), or None when there is none."""
    try:
        tuple(graphlib.TopologicalSorter(edges).static_order())
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def render_imports(edges: dict[str, set[str]], libraries: dict[str, set[str]]) -> str:
    """A table, one row per unit: what it imports of gridguard, and its third-party libraries."""
    lines = ["| package | imports (gridguard.*) | third-party libraries |", "|---|---|---|"]
    for name in sorted(edges):
        ours = ", ".join(sorted(edges[name])) or "-"
        theirs = ", ".join(sorted(libraries.get(name, ()))) or "-"
        lines.append(f"| `{name}` | {ours} | {theirs} |")
    return "\n".join(lines)


def render_rulings(owners: list[Owner]) -> str:
    """The ruling -> module table, in ruling order, linking each id to docs/rulings.md."""
    lines = ["| ruling | title | owning module |", "|---|---|---|"]
    for owner in sorted(owners, key=lambda o: int(o.ruling[1:])):
        anchor = owner.ruling.lower()
        lines.append(
            f"| [{owner.ruling}](rulings.md#{anchor}) | {owner.title} "
            f"| `src/{ROOT}/{owner.module}` |"
        )
    return "\n".join(lines)


def sections() -> dict[str, str]:
    """Every generated section of docs/architecture.md, by marker name."""
    edges, libraries = package_edges()
    owners, _ = read_index(PACKAGE_DIR)
    return {"imports": render_imports(edges, libraries), "rulings": render_rulings(owners)}


def replace_sections(text: str, generated: dict[str, str]) -> str:
    """``text`` with each marked section replaced; ValueError names a missing marker."""
    for name, body in generated.items():
        pattern = re.compile(
            rf"(<!-- generated: {name} -->\n)(?:.*?\n)?(<!-- end: {name} -->)", flags=re.DOTALL
        )
        if pattern.search(text) is None:
            msg = f"no '<!-- generated: {name} -->' ... '<!-- end: {name} -->' section"
            raise ValueError(msg)
        text = pattern.sub(lambda m: f"{m.group(1)}{body}\n{m.group(2)}", text)  # noqa: B023
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", type=Path, help="replace the generated sections in this file")
    args = parser.parse_args(argv)
    generated = sections()
    if args.write is None:
        for name, body in generated.items():
            sys.stdout.write(f"<!-- generated: {name} -->\n{body}\n<!-- end: {name} -->\n")
        return 0
    path: Path = args.write
    path.write_text(replace_sections(path.read_text(encoding="utf-8"), generated), "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
