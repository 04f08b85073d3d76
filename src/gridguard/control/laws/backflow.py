"""Anti-backflow (防逆流, D15): keep grid import at or above the baseline X.

Sign convention: grid power + import / - export. X = 0 means zero export; X > 0 keeps a safety
margin of import. The law keeps a small buffer inside the bound (D20), so the floor it yields
is X + buffer. Storage charges harder / discharges less, PV curtails; charging piles are never
forced, but their limits are not lowered while backflow threatens (the dispatch does that).
"""

from __future__ import annotations


def backflow_floor_kw(*, streaming_kw: float, buffer_kw: float) -> float:
    """The floor on total grid power in kW (+ import) for baseline ``streaming_kw``."""
    return streaming_kw + buffer_kw
