"""A 3-node NATS cluster of our own (JetStream + the MQTT listener) on free 127.0.0.1 ports.

For the fail-over tests: each node keeps its JetStream data in its own folder, MQTT sessions
and retained messages are replicated to all three (``stream_replicas 3``), and so is every
subscription's consumer (``consumer_replicas 3``: one on a single node dies with it, and its
client, still connected elsewhere, silently receives nothing more); any node can be
killed and restarted.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from gridguard.ports import free_port, port_open

NATS_BINARY = "/usr/sbin/nats-server"


def nats_binary() -> str | None:
    found = shutil.which("nats-server")
    if found:
        return found
    return NATS_BINARY if Path(NATS_BINARY).exists() else None


@dataclass
class NatsNode:
    name: str
    client_port: int
    cluster_port: int
    mqtt_port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_port}"


@dataclass
class NatsCluster:
    """``start()``/``kill(node)``/``remove()`` three nodes in ``folder``."""

    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gridguard-nats-")))
    nodes: list[NatsNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.nodes:
            self.nodes = [
                NatsNode(f"n{i}", free_port(), free_port(), free_port(), self.folder / f"n{i}")
                for i in (1, 2, 3)
            ]
        for node in self.nodes:
            node.folder.mkdir(parents=True, exist_ok=True)
            routes = ", ".join(
                f"nats-route://127.0.0.1:{other.cluster_port}"
                for other in self.nodes
                if other is not node
            )
            (node.folder / "nats.conf").write_text(
                f"server_name: {node.name}\n"
                f"listen: 127.0.0.1:{node.client_port}\n"
                f"jetstream {{ store_dir: {node.folder / 'js'!s}, max_mem: 64M, max_file: 512M }}\n"
                f"cluster {{ name: gridguard, listen: 127.0.0.1:{node.cluster_port}, "
                f"routes: [{routes}] }}\n"
                f"mqtt {{ listen: 127.0.0.1:{node.mqtt_port}, stream_replicas: 3, "
                "consumer_replicas: 3 }\n",
                encoding="utf-8",
            )

    @property
    def urls(self) -> list[str]:
        return [node.mqtt_url for node in self.nodes]

    def start(self, timeout_s: float = 30.0) -> None:
        for node in self.nodes:
            self.start_node(node, wait=False)
        for node in self.nodes:
            self._wait_open(node, timeout_s)

    def start_node(self, node: NatsNode, *, wait: bool = True) -> None:
        binary = nats_binary()
        if binary is None:
            raise RuntimeError("nats-server is not installed (apt-get install nats-server)")
        log = (node.folder / "nats.log").open("ab")
        node.process = subprocess.Popen(  # noqa: S603 - fixed binary, our own config file
            [binary, "-c", str(node.folder / "nats.conf")], stdout=log, stderr=log
        )
        if wait:
            self._wait_open(node, 30.0)

    @staticmethod
    def _wait_open(node: NatsNode, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not port_open(node.mqtt_port):
            assert node.process is not None
            if time.monotonic() > deadline or node.process.poll() is not None:
                raise RuntimeError(f"nats node {node.name} did not start (see {node.folder})")
            time.sleep(0.05)

    def kill(self, node: NatsNode) -> None:
        """``kill -9`` one node."""
        if node.process is not None:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait(10)
            node.process = None

    def log_tails(self, lines: int = 40) -> str:
        """The end of every node's log, without the retries to a killed node's route: what a
        failed test prints."""
        parts = []
        for node in self.nodes:
            log = node.folder / "nats.log"
            text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
            kept = [line for line in text.splitlines() if "connect to route" not in line]
            parts.append(f"--- {node.name} ---\n" + "\n".join(kept[-lines:]))
        return "\n".join(parts)

    def remove(self) -> None:
        for node in self.nodes:
            if node.process is not None:
                node.process.terminate()
                node.process.wait(10)
                node.process = None
        shutil.rmtree(self.folder, ignore_errors=True)
