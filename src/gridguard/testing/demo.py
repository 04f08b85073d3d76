"""A running ``gridguard demo`` and what it printed, for the tests that start one."""

from __future__ import annotations

import re
import subprocess
import threading
from dataclasses import dataclass, field

READY_LINE = "Ctrl-C stops everything"


@dataclass
class Demo:
    """One running demo and the lines it printed so far (read by ``read`` in a thread)."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    """Set at the ready line, or when the output ends before it (the waiter then sees why)."""

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            if line.startswith(READY_LINE):
                self.ready.set()
        self.ready.set()

    def start_reading(self) -> Demo:
        threading.Thread(target=self.read, daemon=True).start()
        return self

    def printed(self, pattern: str) -> str:
        """The first group of ``pattern`` (multi-line) in the output so far."""
        found = re.search(pattern, "\n".join(self.lines), flags=re.MULTILINE)
        assert found, "\n".join(self.lines)
        return found.group(1)

    @property
    def port(self) -> int:
        """The embedded broker's port."""
        return int(self.printed(r"mqtt://127\.0\.0\.1:(\d+)"))

    @property
    def modbus_ports(self) -> set[int]:
        return {int(p) for p in re.findall(r"modbus tcp 127\.0\.0\.1:(\d+)", "\n".join(self.lines))}

    @property
    def url(self) -> str:
        """The dashboard's (and REST API's) base URL."""
        return self.printed(r"^  Dashboard +(http://127\.0\.0\.1:\d+)/$")

    @property
    def http_port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def login(self) -> tuple[str, str]:
        """The demo user's name and password, as printed."""
        return self.printed(r"^  Log in as +(\S+)$"), self.printed(r"^  Password +(\S+)$")

    def command(self, program: str) -> str:
        return next(line.strip() for line in self.lines if line.strip().startswith(program))
