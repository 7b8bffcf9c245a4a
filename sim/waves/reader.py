"""Read VCD and FST waveform files into traces, with one-sentence errors for broken files."""

from __future__ import annotations

import fnmatch
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from supernode.rtl.errors import UserError

__all__ = ["Trace", "Waveform", "load", "parse_time", "find_signal", "UNKNOWN"]

#: Sampled value of a signal that is x, z or not yet dumped.
UNKNOWN = -1

_UNITS_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "ps": 1e-12, "fs": 1e-15}


class Trace:
    """The value changes of one signal (read from the file when first needed).

    Members
    -------
    name : str
        Full hierarchical name, scopes joined with ``.`` (``top.a__valid``).
    width : int
        Width in bits.
    times : numpy.ndarray
        Change times in file ticks, non-decreasing (int64).
    values : list
        Value after each change: an ``int``, or ``None`` where any bit is x or z.
    aliases : list of str
        Other names under which the file stores the very same signal.
    kind : str
        ``"bits"``, ``"real"`` or ``"string"`` (Amaranth's simulator dumps FSM states
        as strings such as ``"IDLE/0"``).
    """

    def __init__(self, name: str, width: int, times: np.ndarray | None = None,
                 values: list | None = None, aliases: Sequence[str] | None = None,
                 kind: str = "bits",
                 loader: Callable[[], tuple[np.ndarray, list]] | None = None) -> None:
        self.name, self.width, self.kind = name, width, kind
        self.aliases = list(aliases or [])
        self._times, self._values, self._loader = times, values, loader

    def _load(self):
        if self._times is None:
            self._times, self._values = self._loader()
            self._loader = None

    @property
    def times(self) -> np.ndarray:
        self._load()
        return self._times

    @property
    def values(self) -> list:
        self._load()
        return self._values

    def sample(self, at: Any) -> np.ndarray:
        """Values just before each time in ``at`` (what a flop clocked then sees).

        x, z and times before the first change read as :data:`UNKNOWN`; values wider
        than 62 bits come back as an object array of ``int`` / ``None``.
        """
        at = np.asarray(at, dtype=np.int64)
        idx = np.searchsorted(self.times, at, side="left") - 1
        if self.kind == "string":
            vals = np.array([_state_text(v) for v in self.values] + ["x"], dtype=object)
        elif self.width <= 62 and self.kind == "bits":
            vals = np.array([UNKNOWN if v is None else v for v in self.values] + [UNKNOWN],
                            dtype=np.int64)
        else:
            vals = np.array(list(self.values) + [None], dtype=object)
        return vals[np.where(idx < 0, len(self.values), idx)]


@dataclass
class Waveform:
    """A waveform file: its signal names, and their changes as they are asked for.

    Members
    -------
    path : Path
        The file.
    format : str
        ``"vcd"`` or ``"fst"``.
    tick_s : float
        Seconds per time tick of the file.
    traces : dict
        ``name -> Trace``; aliases map to the same :class:`Trace`.
    last_time : int or callable
        Last time stamp in the file (ticks), or a function that finds it.
    """
    path: Path
    format: str
    tick_s: float
    traces: dict
    last_time: object

    @property
    def end_time(self) -> int:
        """Last time stamp in the file (ticks)."""
        if callable(self.last_time):
            self.last_time = self.last_time()
        return self.last_time

    def names(self) -> list:
        """Every signal name in the file, in file order."""
        return list(self.traces)

    def __getitem__(self, name) -> Trace:
        try:
            return self.traces[name]
        except KeyError:
            raise UserError(f"{self.path} has no signal named {name!r}") from None

    def match(self, pattern: "str | None") -> list:
        """Names matching a comma-separated list of glob patterns (all when ``None``).

        A pattern matches a whole name or its tail after any ``.``, so ``*valid``
        finds ``top.a__valid`` and ``tile.a__*`` finds ``top.tile.a__valid``.
        """
        if not pattern:
            return self.names()
        return [n for n in self.names() if _matches(n, pattern)]

    def timescale_text(self) -> str:
        """The tick as text, such as ``1ps``."""
        for unit, scale in _UNITS_S.items():
            n = self.tick_s / scale
            if n >= 1 and abs(n - round(n)) < 1e-9:
                return f"{round(n)}{unit}"
        return f"{self.tick_s}s"


def _matches(name: str, pattern: str) -> bool:
    pats = [p.strip() for p in pattern.split(",") if p.strip()]
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(name, "*." + p) for p in pats)


def _leaf(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _scope(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else ""


def _is_generated(name: str) -> bool:
    # Amaranth's and Yosys' anonymous nets (\$12, $auto$...), and Verilator's extra copy
    # of the top-level ports under a "$rootio" scope.
    return "$" in name


# --------------------------------------------------------------------------- VCD and FST

# pywellen (the Rust wellen library) reads both formats. It is lenient where a user
# needs to hear about a broken file: a VCD cut off in the middle of a line loads as if
# it ended there, and a time stamp that goes backwards is skipped with a warning. So a
# VCD that does not end its last line is refused here, and when pywellen refuses a VCD
# or warns about it, a line scanner (_vcd_problem) names the first bad line.

_VCD_VALUE_CHARS = re.compile(r"^[01xXzZuUwWlLhH-]+$")


def _vcd_int(bits: str):
    if bits and set(bits) <= {"0", "1"}:
        return int(bits, 2)
    if bits and set(bits.lower()) <= {"0", "1", "l", "h"}:
        return int(bits.lower().replace("l", "0").replace("h", "1"), 2)
    return None


def _read_vcd(path: Path) -> Waveform:
    """A VCD file through pywellen; a file cut short or malformed is named with its line."""
    raw = path.read_bytes()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise UserError(f"{path}, line {line}: byte 0x{raw[exc.start]:02x} is not text; "
                        "a VCD file is plain ASCII") from None
    if not text.strip():
        raise UserError(f"{path}, line 1: the file is empty; expected a VCD header")
    lines = text.split("\n")
    if not text.endswith("\n"):
        # Simulators end every line; a missing newline means the write was cut off.
        _vcd_fail(path, len(lines), f"the file ends in the middle of the line {lines[-1][:40]!r}")
    guard = _wellen_guard(path, "VCD")
    try:
        with guard:
            wave = _read_wellen(path, "vcd")
            # wellen reads a VCD body when the first signal is asked for: ask now, so
            # that a malformed body is found here, where its line can be named.
            first = next(iter(wave.traces.values()), None)
            if first is not None:
                first.times
    except UserError:
        problem = _vcd_problem(lines[:-1])
        if problem:
            _vcd_fail(path, *problem)
        raise
    if guard.warnings:
        problem = _vcd_problem(lines[:-1])
        if problem:
            _vcd_fail(path, *problem)
    return wave


def _vcd_fail(path, lineno, what):
    raise UserError(f"{path}, line {lineno}: {what}; the VCD file is truncated or malformed")


def _vcd_problem(lines) -> "tuple | None":
    """``(line number, what is wrong)`` of the first bad line of a VCD file, or None.

    Checks the structure a reader relies on: the header's blocks, declared ids, time
    stamps that never go backwards, and the form of every value change.
    """
    declared, scopes = set(), 0
    in_header, block, block_words, block_line = True, None, [], 0
    last_time, in_comment = None, False
    for lineno, line in enumerate(lines, start=1):
        words = line.split()
        if in_header:
            for w in words:
                if block is None:
                    if not w.startswith("$") or w == "$end":
                        return lineno, f"unexpected {w!r} in the header; expected a $keyword"
                    block, block_words, block_line = w, [], lineno
                elif w != "$end":
                    block_words.append(w)
                else:
                    if block == "$scope":
                        scopes += 1
                    elif block == "$upscope":
                        scopes -= 1
                    elif block == "$var":
                        if len(block_words) < 4 or not block_words[1].isdecimal():
                            return block_line, (f"$var {' '.join(block_words)!r} needs a type, "
                                                "a width, an id and a name")
                        declared.add(block_words[2])
                    elif block == "$enddefinitions":
                        in_header = False
                    block = None
                    if not in_header:
                        break
            continue
        pending = None
        for w in words:
            if pending is not None:
                if w not in declared:
                    return lineno, f"value change for undeclared id {w!r}"
                pending = None
            elif in_comment:
                in_comment = w != "$end"
            elif w[0] == "#":
                if not w[1:].isdecimal():
                    return lineno, f"time stamp {w!r} is not a whole number"
                if last_time is not None and int(w[1:]) < last_time:
                    return lineno, f"time goes backwards from #{last_time} to {w}"
                last_time = int(w[1:])
            elif w[0] == "$":
                in_comment = w == "$comment"
            elif w[0] in "01xXzZ" and len(w) > 1:
                if w[1:] not in declared:
                    return lineno, f"value change for undeclared id {w[1:]!r}"
            elif w[0] in "bB":
                if not _VCD_VALUE_CHARS.match(w[1:] or " "):
                    return lineno, f"vector value {w!r} has characters other than 0/1/x/z"
                pending = w
            elif w[0] in "rRsS":
                pending = w
            else:
                return lineno, f"cannot read {w!r}; expected #time, a value change or a $keyword"
        if pending is not None:
            return lineno, f"value {pending} has no signal id after it"
    if in_header:
        what = f"the header stops inside {block}" if block else "the header has no $enddefinitions"
        return len(lines), what
    return None


def _read_fst(path: Path) -> Waveform:
    with _wellen_guard(path, "FST"):
        return _read_wellen(path, "fst")


def _read_wellen(path: Path, fmt: str) -> Waveform:
    """Any file pywellen reads; the values of a signal are read when first asked for."""
    try:
        # Imported here: its absence is a user error naming the extra to install, not an
        # ImportError when the package is loaded.
        import pywellen
    except ImportError:
        raise UserError(f"cannot read {path}: waveforms are read with pywellen, which the "
                        "[waves] extra brings: pip install 'supernode[waves]'") from None
    wave = pywellen.Waveform(str(path))
    hier = [(v.full_name, v.bitwidth, v.signal_id, v) for v in wave.all_vars()]
    tick_s = _wellen_tick(wave)
    traces, by_id = {}, {}
    for name, width, sid, var in hier:
        # wellen splits an escaped name such as \\storage[0] into a scope and an index.
        name = name.replace("\\", "").replace(".[", "[")
        key = repr(sid)
        if key in by_id:
            by_id[key].aliases.append(name)
            traces[name] = by_id[key]
            continue
        kind = "string" if var.is_string else "real" if var.is_real else "bits"
        tr = Trace(name, int(width or 1), kind=kind,
                   loader=_wellen_loader(path, var, kind, fmt.upper()))
        by_id[key] = traces[name] = tr

    def last_time():
        return max((int(t.times[-1]) for t in by_id.values() if len(t.times)), default=0)

    return Waveform(path, fmt, tick_s, traces, last_time)


def _wellen_loader(path: Path, var, kind: str, fmt: str):
    def load():
        with _wellen_guard(path, fmt):
            sig = var.signal
            pairs = [sig[i] for i in range(len(sig))]
        times = np.fromiter((p[0] for p in pairs), dtype=np.int64, count=len(pairs))
        values = [p[1] if kind == "string" else _wellen_value(p[1]) for p in pairs]
        return times, values
    return load


class _wellen_guard:
    """Turn any failure of pywellen into one :class:`UserError` naming the file.

    The Rust reader prints panics and warnings on the process's stdout and stderr: they
    are kept out of the terminal (and out of ``--json`` output) while it runs, and kept
    in ``warnings``.
    """

    #: Guards open now: an inner one leaves stderr to the outer, which keeps the warnings.
    _open = []

    def __init__(self, path, fmt):
        self.path, self.fmt = path, fmt
        self.warnings = ""

    def __enter__(self):
        self.outer = not _wellen_guard._open
        _wellen_guard._open.append(self)
        if self.outer:
            self.err = tempfile.TemporaryFile()
            self.redirect = _output_to(self.err)
            self.redirect.__enter__()
        return self

    def __exit__(self, typ, exc, tb):
        _wellen_guard._open.pop()
        if self.outer:
            self.redirect.__exit__(typ, exc, tb)
            self.err.seek(0)
            self.warnings = self.err.read().decode(errors="replace").strip()
            self.err.close()
        if typ is None or issubclass(typ, (KeyboardInterrupt, SystemExit, UserError)):
            return False
        # pywellen raises RuntimeError, or a Rust panic (a BaseException)
        detail = str(exc).strip().replace("\n", " ") or typ.__name__
        raise UserError(f"{self.path}: the {self.fmt} file is truncated or malformed "
                        f"({detail})") from None


def _state_text(v) -> str:
    # Amaranth's simulator writes a decoded value as "NAME/value"; keep the name.
    return "x" if v is None else str(v).rsplit("/", 1)[0] if "/" in str(v) else str(v)


def _wellen_tick(wave) -> float:
    ts = wave.timescale
    if ts is None:
        return 1e-9
    unit = str(ts.unit).strip().lower()
    unit = {"second": "s", "seconds": "s"}.get(unit, unit)
    unit = re.sub(r"[^a-z]", "", unit.split(".")[-1])
    return int(ts.factor) * _UNITS_S.get(unit, 1e-9)


def _wellen_value(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        return _vcd_int(v)
    return None


class _output_to:
    """Point file descriptors 1 and 2 at ``fh`` for the duration of a ``with`` block
    (the Rust reader prints its warnings on stdout, its panics on stderr)."""

    def __init__(self, fh):
        self.fh = fh

    def __enter__(self):
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = [os.dup(1), os.dup(2)]
        os.dup2(self.fh.fileno(), 1)
        os.dup2(self.fh.fileno(), 2)

    def __exit__(self, *exc):
        for fd, saved in zip((1, 2), self.saved):
            os.dup2(saved, fd)
            os.close(saved)


# --------------------------------------------------------------------------- loading

def load(path: str | os.PathLike[str]) -> Waveform:
    """Read a ``.vcd`` or ``.fst`` file (the format is told by its first bytes)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"waveform file {str(path)!r} does not exist; give a .vcd or .fst file")
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head.lstrip()[:1] == b"$":
        return _read_vcd(path)
    if path.suffix.lower() == ".vcd":
        return _read_vcd(path)  # reports the first bad line
    if path.suffix.lower() == ".fst" or head[:1] == b"\x00":
        return _read_fst(path)
    raise UserError(f"{path} is neither a VCD (text starting with '$') nor an FST file")


# --------------------------------------------------------------------------- times and names

def parse_time(text: str | int, wave: "Waveform | None" = None) -> int:
    """A time as ticks of ``wave``: ``1200`` (ticks), ``350ns``, ``1.5us``."""
    if isinstance(text, int):
        return text
    s = str(text).strip()
    m = re.fullmatch(r"(\d+(?:\.\d*)?)\s*(s|ms|us|ns|ps|fs)?", s)
    if not m:
        raise UserError(f"time {s!r} is not a number of ticks or a number with a unit "
                        "(s, ms, us, ns, ps, fs), such as 350ns")
    if m.group(2) is None:
        if "." in m.group(1):
            raise UserError(f"time {s!r} without a unit must be a whole number of ticks")
        return int(m.group(1))
    tick = wave.tick_s if wave is not None else 1e-12
    return int(round(float(m.group(1)) * _UNITS_S[m.group(2)] / tick))


def find_signal(wave: Waveform, leaf: str) -> "str | None":
    """The signal whose last name part is ``leaf`` (such as ``clk``), or ``None``.

    Names written by the design come before tool-generated nets, outer scopes before
    inner ones.
    """
    cands = [n for n in wave.names() if _leaf(n) == leaf]
    return min(cands, key=lambda s: (_is_generated(s), s.count("."), s)) if cands else None
