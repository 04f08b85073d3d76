"""The dashboard's pure view laws: forms to protocol fields, errors to fields, live points."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from gridguard.platform.web.i18n import month_names, translator
from gridguard.platform.web.live import Cursor
from gridguard.platform.web.queries import in_drift
from gridguard.platform.web.views import (
    changed_fields,
    ems_error,
    field_errors,
    last_months,
    live_point,
    parse_strategy_form,
    peak_table,
)
from gridguard.protocol.models import StrategyCreate
from tests.platform.web.seed import desired, strategy

pytestmark = pytest.mark.unit

T0 = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"streaming_status": "1"}, {"streaming_status": 1}),  # the checkbox's value wins
        ({"streaming_status": "2"}, {"streaming_status": 2}),  # only the hidden 2: unchecked
        ({"streaming_condition": " 12 "}, {"streaming_condition": 12}),
        ({"dynamic_demand_percentage": "87.5"}, {"dynamic_demand_percentage": 87.5}),
        ({"streaming_condition": "ten"}, {"streaming_condition": "ten"}),  # the rule judges it
        ({"streaming_condition": ""}, {}),  # an empty input is no field at all
        ({"over_demand_condition_0": "500"}, {"over_demand_condition": [500] + [None] * 11}),
        ({"updated_by": " ops "}, {"updated_by": "ops"}),
    ],
    ids=["toggle-on", "toggle-off", "int", "float", "text", "empty", "one-limit", "by"],
)
def test_parse_strategy_form(form: dict[str, str], expected: dict[str, object]) -> None:
    assert parse_strategy_form(form) == expected


def test_prefixed_form_reads_only_its_item() -> None:
    form = {"s3.streaming_condition": "5", "streaming_condition": "9"}
    assert parse_strategy_form(form, "s3.") == {"streaming_condition": 5}


def test_field_errors_name_the_field_and_month() -> None:
    """A negative January limit and a missing meter: each at its own input."""
    with pytest.raises(ValidationError) as caught:
        StrategyCreate.model_validate(
            {
                "streaming_status": 1,
                "individual_phase_streaming_status": 2,
                "over_demand_status": 2,
                "over_demand_condition": [-1] + [0] * 11,
                "dynamic_demand_percentage": 90,
            }
        )
    errors = field_errors(caught.value.errors())
    assert errors["ele_meter_id"] == "required field missing"
    assert "kW in 0..65535" in errors["over_demand_condition[0]"]


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        (
            "data.ele_meter_id: meter 99 is not in this EMS's site configuration",
            {"ele_meter_id": "meter 99 is not in this EMS's site configuration"},
        ),
        ("data[1].streaming_condition: must be >= 0", {"streaming_condition": "must be >= 0"}),
        (
            "data: meter 9 already has a storage strategy (id 1)",
            {"_form": "data: meter 9 already has a storage strategy (id 1)"},
        ),
    ],
    ids=["field", "batch-item", "whole-form"],
)
def test_ems_error_lands_at_the_named_field(msg: str, expected: dict[str, str]) -> None:
    assert ems_error(msg) == expected


def test_edit_sends_only_what_differs() -> None:
    """Merge semantics: unchanged fields stay out of the update."""
    reported = strategy(T0, baseline_kw=10, limit_kw=800)
    submitted = {
        "streaming_condition": 10,
        "over_demand_condition": [800] * 12,
        "dynamic_demand_percentage": 80,
        "id": 1,
    }
    assert changed_fields(submitted, reported) == {"dynamic_demand_percentage": 80}


def test_live_point_sums_what_sits_behind_the_meter() -> None:
    document = {
        "at": T0.isoformat(),
        "timestamp": 1_781_078_400_000,
        "meters": [
            {
                "meter_id": 9,
                "grid_power_kw": 12.5,
                "phase_power_kw": [4, 4, 4.5],
                "demand_kw": 300.0,
                "target_kw": 700.0,
            }
        ],
        "devices": [
            {"kind": "storage", "meter_id": 9, "power_kw": -20.0, "soc_pct": 60.0},
            {"kind": "storage", "meter_id": 9, "power_kw": -10.0, "soc_pct": 40.0},
            {"kind": "storage", "meter_id": 10, "power_kw": 99.0, "soc_pct": 99.0},
            {"kind": "pv", "meter_id": 9, "power_kw": 150.0},
            {"kind": "pv", "meter_id": 9, "power_kw": 50.0, "online": False},
        ],
    }
    point = live_point(document, 9, T0)
    assert (point.grid_kw, point.phase_kw) == (12.5, (4.0, 4.0, 4.5))
    assert (point.storage_kw, point.soc_pct, point.pv_kw) == (-30.0, 50.0, 150.0)
    assert (point.target_kw, point.sent_ms, point.at_s) == (
        700.0,
        1_781_078_400_000,
        T0.timestamp(),
    )


def test_peak_table_has_every_month_with_headroom() -> None:
    peaks = [SimpleNamespace(month="2026-06", peak_kw=750.04, peak_at=T0, limit_kw=720.0)]
    months = last_months("2026-06", 3)
    rows = peak_table(peaks, months, {"2026-05": 700.0})
    assert months == ["2026-06", "2026-05", "2026-04"]
    assert [(r.peak_kw, r.limit_kw, r.headroom_kw, r.over) for r in rows] == [
        (750.0, 720.0, -30.0, True),
        (None, 700.0, None, False),
        (None, None, None, False),
    ]


def test_last_months_cross_the_year() -> None:
    assert last_months("2026-02", 3) == ["2026-02", "2026-01", "2025-12"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3.4", Cursor(1, 2, 3, 4)),
        (None, Cursor(*(int(T0.timestamp() * 1000),) * 4)),  # a new stream starts now
        ("1.2.x.4", Cursor(*(int(T0.timestamp() * 1000),) * 4)),  # garbage: start now
    ],
    ids=["resume", "fresh", "unreadable"],
)
def test_cursor_from_last_event_id(text: str | None, expected: Cursor) -> None:
    assert Cursor.parse(text, T0) == expected
    assert Cursor.parse(expected.encode(), T0) == expected


def test_drift_quick_check_agrees_with_the_platform() -> None:
    """Same documents: no drift; a changed baseline or a missing strategy: drift."""
    reported = [strategy(T0, baseline_kw=10, limit_kw=800)]
    assert not in_drift([desired(reported[0])], reported)
    assert in_drift([desired(strategy(T0, baseline_kw=20, limit_kw=800))], reported)
    assert in_drift([desired(reported[0])], [])
    assert not in_drift(None, reported)


def test_both_languages_use_the_protocol_terms() -> None:
    zh, en = translator("zh"), translator("en")
    assert [
        zh(k)
        for k in (
            "streaming_status",
            "individual_phase_streaming_status",
            "over_demand_status",
            "dynamic_demand_status",
        )
    ] == ["防逆流", "单相防逆流", "防过需", "动态需量"]
    assert en("page_of", first=1, last=50, total=10) == "devices 1–50 of 10"
    assert translator("fr")("fleet") == "Fleet"  # unknown language: English
    assert len(month_names("zh")) == len(month_names("en")) == 12
