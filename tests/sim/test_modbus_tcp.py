"""The simulator answers Modbus TCP as a field device does: exception codes, pipelining, gaps.

Pure cases on the PDU handler, then a served endpoint reached by raw sockets and by Debian's
``mbpoll`` (a third-party master), so the framing is not only checked against our own client.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import subprocess
from collections.abc import AsyncIterator

import pytest

from gridguard.devices.modbus.regmap import load_map
from gridguard.sim import modbus_tcp
from gridguard.sim.modbus_tcp import Frame, FrameError, answer, split_frames
from gridguard.sim.servers import EndpointServer, RegisterBank, ServedDevice

pytestmark = pytest.mark.integration


def pcs_bank() -> RegisterBank:
    bank = RegisterBank(load_map("generic-pcs"))
    bank.set("soc_pct", 61.5)
    return bank


def read(function: int, address: int, count: int) -> bytes:
    return struct.pack(">BHH", function, address, count)


def write16(address: int, values: list[int], byte_count: int | None = None) -> bytes:
    count = len(values)
    size = 2 * count if byte_count is None else byte_count
    return struct.pack(f">BHHB{count}H", 16, address, count, size, *values)


@pytest.mark.parametrize(
    ("request_pdu", "expected"),
    [
        (read(3, 0x100, 0), b"\x83\x03"),
        (read(4, 0, 126), b"\x84\x03"),
        (read(4, 0xFFFF, 2), b"\x84\x02"),
        (read(4, 0x0002, 1), b"\x04\x02\x02\x67"),
        (read(4, 0x0006, 3), b"\x04\x06\x00\x00\x00\x00\x00\x00"),
        (read(4, 0x0001, 3), b"\x04\x06\x00\x00\x02\x67\x00\x00"),
        (b"\x2b\x0e\x01\x00", b"\xab\x01"),
        (b"\x01\x00\x00\x00\x08", b"\x81\x01"),
        (struct.pack(">BHH", 6, 0x0002, 5), b"\x86\x02"),
        (write16(0x100, [0, 50], byte_count=3), b"\x90\x03"),
        (write16(0x100, []), b"\x90\x03"),
        (write16(0x101, [0, 0]), b"\x90\x02"),
        (write16(0x100, [0, 50]), b"\x10\x01\x00\x00\x02"),
    ],
    ids=[
        "quantity-0",  # why: 1..125 registers, else exception 03 with code | 0x80
        "quantity-126",
        "past-65535",  # why: an address that does not exist is exception 02
        "mapped",
        "unmapped-reads-zeros",  # why: a real meter's gaps read 0, not exception 02
        "across-a-gap",
        "unknown-function",  # why: exception 01 with the function's own code | 0x80
        "coils-not-served",
        "write-read-only",  # why: a measurement is not writable: 02, nothing changes
        "byte-count-wrong",
        "write-none",
        "write-past-the-point",
        "write-setpoint",
    ],
)
def test_answers(request_pdu: bytes, expected: bytes) -> None:
    assert answer(pcs_bank(), request_pdu)[0] == expected


def test_write_reports_the_point_and_refused_write_changes_nothing() -> None:
    bank = pcs_bank()
    assert answer(bank, write16(0x100, [0xFFFF, 0xFF38]))[1] == ["power_setpoint_kw"]
    assert bank.get("power_setpoint_kw") == pytest.approx(-20.0)
    answer(bank, write16(0x0FF, [1, 2, 3]))
    assert bank.get("power_setpoint_kw") == pytest.approx(-20.0)


def test_split_frames_keeps_order_and_the_incomplete_rest() -> None:
    """Three requests in one segment and half of a fourth: three frames, the half kept."""
    frames = [Frame(t, 1, read(4, t, 1)) for t in (7, 8, 9)]
    stream = b"".join(f.encode() for f in frames) + Frame(10, 1, read(4, 0, 1)).encode()[:5]
    got, rest = split_frames(stream)
    assert got == frames
    assert len(rest) == 5


def test_split_frames_refuses_what_is_not_modbus() -> None:
    with pytest.raises(FrameError, match="protocol id 1"):
        split_frames(struct.pack(">HHHB", 1, 1, 6, 1) + read(4, 0, 1))


@pytest.fixture
async def pcs_endpoint() -> AsyncIterator[EndpointServer]:
    server = EndpointServer("127.0.0.1", 0, [ServedDevice(1, pcs_bank())])
    await server.start()
    yield server
    await server.stop()


async def test_pipelined_requests_all_answered_in_order(pcs_endpoint: EndpointServer) -> None:
    """Four requests in one TCP segment (one bad, one for a unit not there): four answers,
    in order, each with its transaction id."""
    requests = [
        Frame(1, 1, read(4, 0x0002, 1)),
        Frame(2, 1, read(3, 0x100, 0)),
        Frame(3, 9, read(4, 0x0002, 1)),
        Frame(4, 1, read(3, 0x100, 2)),
    ]
    reader, writer = await asyncio.open_connection("127.0.0.1", pcs_endpoint.port)
    try:
        writer.write(b"".join(r.encode() for r in requests))
        await writer.drain()
        received = b""
        answers: list[Frame] = []
        async with asyncio.timeout(5):
            while len(answers) < len(requests):
                received += await reader.read(4096)
                answers, _ = split_frames(received)
    finally:
        writer.close()
    assert [(a.transaction_id, a.unit_id, a.pdu) for a in answers] == [
        (1, 1, b"\x04\x02\x02\x67"),
        (2, 1, b"\x83\x03"),
        (3, 9, bytes([0x84, modbus_tcp.GATEWAY_TARGET_FAILED])),
        (4, 1, b"\x03\x04\x00\x00\x00\x00"),
    ]


needs_mbpoll = pytest.mark.skipif(
    shutil.which("mbpoll") is None and os.environ.get("CI") != "true",
    reason="mbpoll is not installed (apt-get install mbpoll); under CI=true a failure",
)


def mbpoll(port: int, *args: str, values: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """mbpoll once against the endpoint (PDU addressing, -0); ``values`` to write."""
    options = ["-m", "tcp", "-p", str(port), "-a", "1", "-0", "-1", "-o", "2", *args]
    return subprocess.run(
        ["mbpoll", *options, "127.0.0.1", *(("--", *values) if values else ())],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


@needs_mbpoll
async def test_mbpoll_reads_across_gaps_and_writes_a_setpoint(
    pcs_endpoint: EndpointServer,
) -> None:
    """mbpoll reads input registers 0..9 (6..9 unmapped: zeros) and writes the 32-bit
    setpoint, which reaches the bank and its write hook."""
    written: list[tuple[str, float]] = []
    pcs_endpoint.devices[1].on_write = lambda name, value: written.append((name, value))
    done = await asyncio.to_thread(mbpoll, pcs_endpoint.port, "-t", "3", "-r", "0", "-c", "10")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[2]: \t615" in done.stdout
    assert "[9]: \t0" in done.stdout
    done = await asyncio.to_thread(
        mbpoll, pcs_endpoint.port, "-t", "4:int", "-B", "-r", "256", values=("-200",)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert [name for name, _ in written] == ["power_setpoint_kw"]
    assert written[0][1] == pytest.approx(-20.0)


@needs_mbpoll
async def test_mbpoll_sees_the_exception_of_a_read_only_write(
    pcs_endpoint: EndpointServer,
) -> None:
    """Writing a measurement: mbpoll reports the device's 'Illegal data address'."""
    done = await asyncio.to_thread(mbpoll, pcs_endpoint.port, "-t", "4", "-r", "2", values=("7",))
    assert done.returncode != 0
    assert "Illegal data address" in done.stdout + done.stderr
