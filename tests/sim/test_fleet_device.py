"""One simulated EMS of the fleet, without a broker: commands in, replies and reports out."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from gridguard.control.status import ControlStatus
from gridguard.protocol import codec
from gridguard.protocol.models import CreateResult, ListPost, SyncResult
from gridguard.sim.fleet_device import KEEP_REPLIES, SimDevice
from gridguard.sim.fleet_plant import MeterState, step_meter
from gridguard.sim.fleet_site import SHAPES, shape_for
from gridguard.testing.examples import CREATE_DATA

pytestmark = pytest.mark.unit

UID = "sim-unit-0001"
NOW_NS = 1_780_000_000 * 10**9  # 2026-05-28, the fifth month in Asia/Shanghai
CREATE = {**CREATE_DATA, "ele_meter_id": 1, "over_demand_condition": list(range(100, 1300, 100))}


def command(op: str, data: Any = None, *, mid: str | None = None, uid: str = UID) -> bytes:
    envelope: dict[str, Any] = {
        "mid": mid or str(uuid.uuid4()),
        "type": f"streaming_overdemand_{op}",
        "device_uid": uid,
        "timestamp": NOW_NS // 10**6,
    }
    if data is not None:
        envelope["data"] = data
    return codec.json_bytes(envelope)


def reply_of(payload: bytes) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(payload)
    return document


@pytest.fixture
def device() -> SimDevice:
    return SimDevice(UID, shape_for(0))


def test_create_returns_the_id_and_lists_it_populated(device: SimDevice) -> None:
    """D8/D13: 200 with {id: 1}; list/post fills ele_meter, devices and this month's T."""
    mid = str(uuid.uuid4())
    answer = device.handle("create", command("create", CREATE, mid=mid), NOW_NS)
    result = codec.parse_model(CreateResult, answer.reply)
    assert result.data is not None
    assert (answer.code, answer.changed, result.reply, result.data.id) == (200, True, mid, 1)
    report = codec.parse_model(ListPost, device.list_post(NOW_NS)).data[0]
    assert report.current_over_demand_condition == 500
    assert report.ele_meter.station_name == SHAPES[0].name
    assert [type(d).__name__ for d in report.devices] == ["EmsDevice"]


@pytest.mark.parametrize(
    ("op", "payload", "names"),
    [
        ("create", command("create", {**CREATE, "ele_meter_id": 7}), "data.ele_meter_id"),
        (
            "create",
            command("create", {**CREATE, "dynamic_demand_percentage": 101}),
            "data.dynamic_demand_percentage",
        ),
        ("create", command("create", CREATE, uid="someone-else"), "device_uid"),
        ("update", command("update", {"id": 9, "streaming_status": 1}), "data.id"),
        ("delete", command("delete", {"id": 3}), "data.id"),
        ("create", b'{"mid": "x", "data": ', "invalid JSON"),
    ],
    ids=[
        "unknown-meter",
        "percentage-over-100",
        "not-this-ems",
        "update-unknown-id",
        "delete-unknown-id",
        "not-json",
    ],
)
def test_refusals_name_the_field_and_change_nothing(
    device: SimDevice, op: str, payload: bytes, names: str
) -> None:
    """D3: a 400 whose msg names the field (or the syntax error); the strategy set is kept."""
    answer = device.handle(op, payload, NOW_NS)
    assert (answer.code, answer.changed) == (400, False)
    assert names in reply_of(answer.reply)["msg"]
    assert device.strategies == {}


def test_repeated_mid_replays_the_stored_reply(device: SimDevice) -> None:
    """D5: the identical bytes, marked duplicate, and no second strategy."""
    payload = command("create", CREATE)
    first = device.handle("create", payload, NOW_NS)
    again = device.handle("create", payload, NOW_NS + 10**9)
    assert (again.reply, again.duplicate, again.changed) == (first.reply, True, False)
    assert list(device.strategies) == [1]


def test_repeated_mid_of_a_refused_command_replays_the_400(device: SimDevice) -> None:
    """A refusal is stored too: a repeat does not get processed anew."""
    payload = command("create", {**CREATE, "ele_meter_id": 7})
    first = device.handle("create", payload, NOW_NS)
    assert device.handle("create", payload, NOW_NS).reply == first.reply


def test_same_mid_on_another_op_is_a_new_command(device: SimDevice) -> None:
    """The key is (op, mid), as the spec's examples reuse one mid across ops."""
    mid = str(uuid.uuid4())
    device.handle("create", command("create", CREATE, mid=mid), NOW_NS)
    answer = device.handle(
        "update", command("update", {"id": 1, "streaming_condition": 30}, mid=mid), NOW_NS
    )
    assert (answer.code, answer.duplicate) == (200, False)
    assert device.strategies[1].streaming_condition == 30


def test_only_the_latest_replies_are_kept(device: SimDevice) -> None:
    """A simulator's bounded memory: the oldest mid is forgotten after KEEP_REPLIES more."""
    oldest = command("sync")
    device.handle("sync", oldest, NOW_NS)
    for _ in range(KEEP_REPLIES):
        device.handle("sync", command("sync"), NOW_NS)
    assert not device.handle("sync", oldest, NOW_NS).duplicate


def test_sync_returns_the_full_list_and_changes_nothing(device: SimDevice) -> None:
    """D12: sync's data is the list, and no list/post is due after it."""
    device.handle("create", command("create", CREATE), NOW_NS)
    answer = device.handle("sync", command("sync"), NOW_NS)
    assert not answer.changed
    assert [s.id for s in codec.parse_model(SyncResult, answer.reply).data] == [1]


def test_status_post_has_the_control_status_shape() -> None:
    """status/post parses as the control engine's status snapshot, for every shape."""
    for index, shape in enumerate(SHAPES):
        sim = SimDevice(f"sim-{index}", shape)
        document = json.loads(sim.status_post(NOW_NS, 2.0))
        assert (document["type"], document["device_uid"]) == (
            "streaming_overdemand_status",
            f"sim-{index}",
        )
        status = ControlStatus.model_validate(
            {k: v for k, v in document.items() if k not in {"type", "device_uid", "timestamp"}}
        )
        assert [m.meter_id for m in status.meters] == [m.id for m in shape.meters]
        assert len(status.devices) == sum(len(m.units) for m in shape.meters)


NOON_NS = 1_780_000_000 * 10**9 + 4 * 3600 * 10**9  # 12:xx in Asia/Shanghai: PV at its peak


@pytest.mark.parametrize(
    ("strategy", "check"),
    [
        (
            {
                "device_type": 2,
                "over_demand_status": 1,
                "over_demand_condition": [250] * 12,
                "streaming_status": 2,
                "dynamic_demand_status": 2,
            },
            lambda s: s.grid_power_kw <= 250 + 1e-9 and s.storage_kw > 0,
        ),
        (
            {
                "device_type": 3,
                "over_demand_status": 2,
                "over_demand_condition": [999] * 12,
                "streaming_status": 1,
                "streaming_condition": 400,
            },
            lambda s: s.grid_power_kw >= 400 and s.pv_limit_kw is not None,
        ),
    ],
    ids=["storage-shaves-to-T", "pv-curtailed-above-floor"],
)
def test_toy_plant_follows_the_strategy(strategy: dict[str, Any], check: Any) -> None:
    """Storage discharges to hold T; PV is curtailed to keep import above the floor."""
    shape = SHAPES[0].meters[0]  # 320 kW base load, 200 kW storage, 150 kW PV
    sim = SimDevice("plant", SHAPES[0])
    sim.handle("create", command("create", {**CREATE, **strategy}, uid="plant"), NOON_NS)
    state = MeterState(demand_kw=300.0)
    step = step_meter(
        shape, sim.strategies, state, t_s=NOON_NS / 1e9, dt_s=2.0, month=5, scale=1.4, phase=0.25
    )
    assert check(step), step


def test_equal_monthly_limits_are_held_once() -> None:
    """Memory: devices with the same twelve limits share one tuple; the values are unchanged."""
    first, second = SimDevice("a", shape_for(0)), SimDevice("b", shape_for(0))
    first.handle("create", command("create", CREATE, uid="a"), NOW_NS)
    second.handle("create", command("create", CREATE, uid="b"), NOW_NS)
    months = first.strategies[1].over_demand_condition
    assert months is second.strategies[1].over_demand_condition
    assert list(months) == CREATE["over_demand_condition"]
