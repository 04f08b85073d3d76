"""Every JSON example of the spec parses, and what we emit for it parses back equal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from gridguard.protocol import codec, models

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parent.parent / "fixtures" / "spec"

EXAMPLES: list[tuple[str, type[BaseModel]]] = [
    ("01-list-post.json", models.ListPost),
    ("02-sync-command.json", models.SyncCommand),
    ("03-sync-result.json", models.SyncResult),
    ("04-create-command.json", models.CreateCommand),
    ("05-create-result.json", models.CreateResult),
    ("06-update-command.json", models.UpdateCommand),
    ("07-update-result.json", models.UpdateResult),
    ("08-delete-command.json", models.DeleteCommand),
    ("09-delete-result.json", models.DeleteResult),
    ("10-update_all-command.json", models.UpdateAllCommand),
    ("11-update_all-result.json", models.UpdateAllResult),
]


def test_all_eleven_examples_are_covered() -> None:
    """The fixture folder holds exactly the spec's 11 examples, each mapped to a model."""
    assert sorted(p.name for p in FIXTURES.glob("*.json")) == sorted(n for n, _ in EXAMPLES)


@pytest.mark.parametrize(("name", "model"), EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_example_parses_and_round_trips(name: str, model: type[BaseModel]) -> None:
    """Parse verbatim (trailing commas and all, D4), emit, parse again: equal."""
    payload = (FIXTURES / name).read_bytes()
    message = codec.parse_model(model, payload)
    again = codec.parse_model(model, codec.encode(message))
    assert again == message


@pytest.mark.parametrize(
    ("name", "op"),
    [(n, n.split("-")[1]) for n, _ in EXAMPLES if n.endswith("command.json")],
)
def test_command_examples_decode_on_their_topic(name: str, op: str) -> None:
    """Each command example is accepted by decode_command for its own op."""
    payload = (FIXTURES / name).read_bytes()
    message = codec.decode_command(op, payload, device_uid="iYRkfVpi77")
    assert message.type == f"streaming_overdemand_{op}"


def test_list_example_keeps_its_content() -> None:
    """Spot-check the list example's nested shapes survive parsing."""
    message = codec.parse_model(models.ListPost, (FIXTURES / "01-list-post.json").read_bytes())
    strategy = message.data[0]
    assert strategy.ele_meter.ele_device_type.name == "Acrel-ADW300"
    assert [d.name for d in strategy.devices] == ["设备208", "设备210"]
    assert isinstance(strategy.devices[0], models.EmsDevice)
    assert strategy.devices[0].created_at == "2024-04-24T02:11:01.16135116Z"
    assert strategy.dynamic_demand_percentage == 60


def test_create_example_defaults_device_type_to_storage() -> None:
    """D8: the create example has no device_type; it is absent on the wire model."""
    message = codec.decode_command("create", (FIXTURES / "04-create-command.json").read_bytes())
    assert isinstance(message, models.CreateCommand)
    assert message.data.device_type is None
    assert message.data.ele_meter_id == 9


def test_encode_emits_ele_meter_key_and_no_nulls() -> None:
    """D13: ``ele_meter`` goes on the wire; absent options are omitted, not null."""
    message = codec.parse_model(models.ListPost, (FIXTURES / "01-list-post.json").read_bytes())
    emitted = json.loads(codec.encode(message))
    assert "ele_meter" in emitted["data"][0]
    assert "elemeter" not in emitted["data"][0]
    assert "trace_id" in emitted


def test_elemeter_alias_accepted_on_input() -> None:
    """D13: the table's ``elemeter`` spelling is accepted too."""
    raw = json.loads(
        codec.encode(
            codec.parse_model(models.ListPost, (FIXTURES / "01-list-post.json").read_bytes())
        )
    )
    raw["data"][0]["elemeter"] = raw["data"][0].pop("ele_meter")
    message = models.ListPost.model_validate(raw)
    assert message.data[0].ele_meter.id == 10
