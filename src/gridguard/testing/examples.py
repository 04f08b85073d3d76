"""A valid create command's ``data`` for the example site (meter 9), shared by tests and benches."""

from __future__ import annotations

from typing import Any

CREATE_DATA: dict[str, Any] = {
    "ele_meter_id": 9,
    "streaming_status": 1,
    "streaming_condition": 10,
    "individual_phase_streaming_status": 2,
    "over_demand_status": 1,
    "over_demand_condition": [500] * 12,
    "dynamic_demand_percentage": 90,
}
"""Anti-backflow at 10 kW and over-demand at 500 kW on meter 9; storage (device_type 2)."""
