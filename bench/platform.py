"""``python bench/platform.py``: the platform bench (its code is in ``platform_bench.py``).

    .venv/bin/python bench/platform.py [--quick] [--db sqlite|postgresql] ...

Run as a script, a file in ``bench/`` puts this folder first on ``sys.path``, so a file named
``platform.py`` here is what ``import platform`` finds, for this bench and for every other one
(``uuid``, ``httpx`` and many more import the standard library's ``platform``). So this file
does two things: run as a script, it runs the bench; imported, it hands the importer the
standard library's module in its place.
"""

from __future__ import annotations

import os
import runpy
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))  # noqa: PTH100, PTH120 - pathlib is no help here


def _in_this_folder(entry: str) -> bool:
    return os.path.abspath(entry or os.curdir) == _HERE  # noqa: PTH100


if __name__ == "__main__":
    runpy.run_path(os.path.join(_HERE, "platform_bench.py"), run_name="__main__")  # noqa: PTH118
else:
    _saved = sys.path[:]
    sys.path[:] = [entry for entry in sys.path if not _in_this_folder(entry)]
    del sys.modules[__name__]
    try:
        import platform as _stdlib_platform  # the standard library's, now that we are not found
    finally:
        sys.path[:] = _saved
    sys.modules[__name__] = _stdlib_platform
