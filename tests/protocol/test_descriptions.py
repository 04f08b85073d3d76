"""Every field of every JSON Schema is described (with its unit), and in the field reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gridguard.protocol.descriptions import FIELDS
from gridguard.protocol.schema import described, schema_models

pytestmark = pytest.mark.unit

REFERENCE = Path(__file__).parents[2] / "docs" / "field-reference.md"


def properties(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = [("(top)", n, p) for n, p in schema.get("properties", {}).items()]
    for model, definition in schema.get("$defs", {}).items():
        found += [(model, n, p) for n, p in definition.get("properties", {}).items()]
    return found


@pytest.mark.parametrize("stem", sorted(schema_models()))
def test_every_property_described(stem: str) -> None:
    model = schema_models()[stem]
    schema = described(model.model_json_schema(mode="validation"), model.__name__)
    missing = [f"{m}.{n}" for m, n, p in properties(schema) if not p.get("description")]
    assert not missing
    with_unit = [p for _, _, p in properties(schema) if "x-unit" in p]
    assert all(p["description"].endswith(f"({p['x-unit']})") for p in with_unit)


def test_kw_fields_carry_their_unit() -> None:
    """Conditions and powers say kW in the schema."""
    for name in ("streaming_condition", "over_demand_condition", "dynamic_demand", "rated_power"):
        assert FIELDS[name].unit == "kW", name
    assert FIELDS["dynamic_demand_percentage"].unit == "%"


def test_field_reference_names_every_field() -> None:
    """docs/field-reference.md has a row for every field the schemas carry."""
    text = REFERENCE.read_text(encoding="utf-8")
    names = {key.split(".")[-1] for key in FIELDS}
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert not missing, missing
