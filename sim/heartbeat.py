"""A line on stderr every few seconds while a long simulation, build, proof or synthesis runs.

The tools run as subprocesses that write their own log files; a :class:`Heartbeat`
reads the newest telling line of that log (the simulated time, the Yosys pass, the
solver's step) and prints it with the time so far, so a long run is seen to move.
``SUPERNODE_PROGRESS=0`` turns the lines off.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import Literal, TextIO

__all__ = ["Heartbeat", "last_match", "cocotb_status", "build_status"]

#: Silence before the first line (short runs print nothing), and time between lines.
FIRST_AFTER_S = 3.0
EVERY_S = 10.0


def last_match(path: str | os.PathLike[str], pattern: str, *, group: int = 0,
               tail_bytes: int = 16384) -> "str | None":
    """The last match of ``pattern`` in the end of the text file ``path``, or None."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - tail_bytes))
            text = fh.read().decode(errors="replace")
    except OSError:
        return None
    found = None
    for found in re.finditer(pattern, text, re.M):
        pass
    return found.group(group).strip() if found else None


class Heartbeat:
    """``with Heartbeat("tile simulation on icarus", status=fn):`` prints
    ``tile simulation on icarus: 13 s, <fn()>`` on stderr every :data:`EVERY_S` seconds
    once the block has run :data:`FIRST_AFTER_S` seconds, and how long it took at the end
    when it printed anything.
    """

    def __init__(self, label: str, status: Callable[[], object] | None = None, *,
                 first_after_s: float = FIRST_AFTER_S, every_s: float = EVERY_S,
                 stream: TextIO | None = None) -> None:
        self.label, self.status = label, status
        self.first_after_s, self.every_s = first_after_s, every_s
        self.stream = stream or sys.stderr
        self.enabled = os.environ.get("SUPERNODE_PROGRESS", "1") not in ("0", "")
        self.printed = 0

    def __enter__(self) -> Heartbeat:
        self.started = time.monotonic()
        self._stop = threading.Event()
        if self.enabled:
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return self

    def _line(self) -> str:
        elapsed = time.monotonic() - self.started
        status = None
        if self.status is not None:
            try:
                status = self.status()
            except Exception:  # a status is a best effort: it never stops the work
                status = None
        return f"{self.label}: {elapsed:.0f} s" + (f", {status}" if status else "")

    def _beat(self) -> None:
        wait = self.first_after_s
        while not self._stop.wait(wait):
            print(self._line(), file=self.stream, flush=True)
            self.printed += 1
            wait = self.every_s

    def __exit__(self, *exc: object) -> Literal[False]:
        self._stop.set()
        if self.enabled:
            self._thread.join()
        if self.printed:
            elapsed = time.monotonic() - self.started
            print(f"{self.label}: finished after {elapsed:.0f} s", file=self.stream, flush=True)
        return False


def cocotb_status(log_path: str | os.PathLike[str]) -> "str | None":
    """The simulated time and message of the newest line of a cocotb log."""
    line = last_match(log_path, r"^\s*\d+(?:\.\d+)?\s*[munpf]?s\s+(?:INFO|WARNING).*$")
    if line is None:
        return None
    parts = line.split(None, 3)
    sim_time = parts[0]
    message = parts[3] if len(parts) > 3 else ""
    return f"simulated {sim_time}" + (f": {message[:80]}" if message else "")


def build_status(log_path: str | os.PathLike[str]) -> "str | None":
    """The newest line of a simulator build log, shortened."""
    line = last_match(log_path, r"^\S.*$")
    return f"building: {line[:80]}" if line else "building"
