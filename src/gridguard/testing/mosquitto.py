"""A Mosquitto process of our own on a free 127.0.0.1 port, with persistence and TCP_NODELAY.

Used by tests that stop and restart their broker and by ``bench/protocol.py``. As root,
Mosquitto drops to its own user, so the persistence folder is made world-writable.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from gridguard.ports import free_port, port_open

__all__ = ["free_port", "port_open"]


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    fallback = Path("/usr/sbin/mosquitto")
    return str(fallback) if fallback.exists() else None


class MosquittoProcess:
    """``start()``/``stop()`` a Mosquitto on 127.0.0.1:``port`` keeping state in ``folder``."""

    def __init__(
        self,
        folder: Path | None = None,
        port: int | None = None,
        *,
        listener: str = "",
        general: str = "",
        per_listener_settings: bool = True,
    ) -> None:
        """``listener``: extra lines for the listener (TLS files, ``allow_anonymous false``,
        ``password_file``); anonymous plain MQTT when empty. ``general``: extra broker-wide
        lines (e.g. ``max_queued_messages 0``). ``per_listener_settings=False`` makes the
        listener's lines broker-wide (a plugin's ``$CONTROL`` topics need it). ``folder`` must
        be reachable by the ``mosquitto`` user; by default a fresh one under the system temp
        folder."""
        folder = folder or Path(tempfile.mkdtemp(prefix="gridguard-mosquitto-"))
        self.folder = folder
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)
        settings = listener or "allow_anonymous true\n"
        (folder / "mosquitto.conf").write_text(
            f"per_listener_settings {str(per_listener_settings).lower()}\n"
            f"listener {self.port} 127.0.0.1\n{settings}"
            f"persistence true\npersistence_location {folder}/\nset_tcp_nodelay true\n"
            f"log_dest file {folder}/mosquitto.log\n{general}",
            encoding="utf-8",
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def log(self) -> str:
        """What the broker has logged so far (connections, refusals); empty before it starts."""
        path = self.folder / "mosquitto.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def start(self, timeout_s: float = 10.0) -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise RuntimeError("the mosquitto binary is not installed (apt-get install mosquitto)")
        self.process = subprocess.Popen(  # noqa: S603 - fixed binary, our own config file
            [binary, "-c", str(self.folder / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while not port_open(self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"mosquitto did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def remove(self) -> None:
        """Stop and delete the folder (persistence, logs)."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def count_messages(port: int, topic: str, window_s: float) -> int:
    """Messages on ``topic`` that ``mosquitto_sub`` receives in ``window_s`` from the first one
    (a C subscriber: a Python one would cost the benches as much CPU as what they measure)."""
    argv = ["mosquitto_sub", "-p", str(port), "-t", topic, "-W", str(int(window_s) + 2)]
    sub = subprocess.Popen(argv, stdout=subprocess.PIPE)  # noqa: S603 - fixed arguments
    assert sub.stdout is not None
    counted = [0]
    stop_at = [float("inf")]
    started = threading.Event()

    def read() -> None:
        assert sub.stdout is not None
        for _ in sub.stdout:
            if not started.is_set():
                started.set()
                stop_at[0] = time.monotonic() + window_s
            if time.monotonic() >= stop_at[0]:
                break
            counted[0] += 1

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(window_s + 5)
    sub.kill()
    sub.wait()
    return counted[0]


@contextlib.contextmanager
def private_broker() -> Iterator[MosquittoProcess]:
    """A Mosquitto of its own on a free port for the block; skips the test when the
    ``mosquitto`` binary is not installed."""
    if mosquitto_binary() is None:
        import pytest  # noqa: PLC0415 - only a test asks for a private broker

        pytest.skip("the mosquitto binary is not installed")
    process = MosquittoProcess()
    process.start()
    try:
        yield process
    finally:
        process.remove()
