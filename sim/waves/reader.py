"""Read VCD and FST waveform files into traces, with one-sentence errors for broken files."""

import fnmatch
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtl.errors import UserError

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

    def __init__(self, name, width, times=None, values=None, aliases=None, kind="bits",
                 loader=None):
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

    def sample(self, at) -> np.ndarray:
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


# --------------------------------------------------------------------------- VCD

_VCD_VALUE_CHARS = re.compile(r"^[01xXzZuUwWlLhH-]+$")


def _vcd_int(bits: str):
    if bits and set(bits) <= {"0", "1"}:
        return int(bits, 2)
    if bits and set(bits.lower()) <= {"0", "1", "l", "h"}:
        return int(bits.lower().replace("l", "0").replace("h", "1"), 2)
    return None


def _read_vcd(path: Path) -> Waveform:
    """A strict VCD reader: every error names the line it was found on."""

    def fail(lineno, what):
        raise UserError(f"{path}, line {lineno}: {what}; the VCD file is truncated or malformed")

    with open(path, "rb") as fh:
        raw = fh.read()
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
        fail(len(lines), f"the file ends in the middle of the line {lines[-1][:40]!r}")

    tick_s = None
    scopes: list = []
    by_id: dict = {}          # id code -> (width, [names])
    order: list = []          # id codes in declaration order
    in_header = True
    block = None              # keyword of an open $... block in the header
    block_words: list = []
    block_line = 0
    changes: dict = {}        # id -> ([times], [values])
    now = None
    last_time = None
    in_comment = False

    def close_block(lineno):
        nonlocal tick_s, in_header, block
        kw, words = block, block_words
        if kw == "$timescale":
            m = re.fullmatch(r"(\d+)\s*(s|ms|us|ns|ps|fs)", "".join(words))
            if not m or m.group(1) not in ("1", "10", "100"):
                fail(block_line, f"timescale {' '.join(words)!r} is not one of 1/10/100 s..fs")
            tick_s = int(m.group(1)) * _UNITS_S[m.group(2)]
        elif kw == "$scope":
            if len(words) < 2:
                fail(block_line, "$scope needs a type and a name")
            scopes.append(words[1])
        elif kw == "$upscope":
            if not scopes:
                fail(block_line, "$upscope without an open $scope")
            scopes.pop()
        elif kw == "$var":
            if len(words) < 4 or not words[1].isdigit():
                fail(block_line, f"$var {' '.join(words)!r} needs a type, a width, an id and a name")
            width, code, ref = int(words[1]), words[2], words[3].replace("\\", "")
            name = ".".join(scopes + [ref])
            if code in by_id:
                by_id[code][1].append(name)
            else:
                by_id[code] = (width, [name], {"real": "real", "string": "string"}.get(words[0], "bits"))
                order.append(code)
                changes[code] = ([], [])
        elif kw == "$enddefinitions":
            if scopes:
                fail(block_line, f"$enddefinitions with scope {'.'.join(scopes)!r} still open")
            in_header = False
        block = None

    for lineno, line in enumerate(lines[:-1] if text.endswith("\n") else lines, start=1):
        words = line.split()
        if in_header:
            for w in words:
                if block is None:
                    if not w.startswith("$"):
                        fail(lineno, f"unexpected {w!r} in the header; expected a $keyword")
                    block, block_words, block_line = w, [], lineno
                    if w == "$end":
                        fail(lineno, "$end without an open $keyword")
                elif w == "$end":
                    close_block(lineno)
                    if not in_header:
                        break
                else:
                    block_words.append(w)
            continue
        pending = None  # a vector, real or string value waiting for its id: ("b", "1010")
        for w in words:
            if pending is not None:
                kind, bits = pending
                pending = None
                if w not in changes:
                    fail(lineno, f"value change for undeclared id {w!r}")
                if now is None:
                    fail(lineno, "value change before the first time stamp")
                if kind == "b":
                    value = _vcd_int(bits)
                elif kind == "s":
                    value = bits
                else:
                    try:
                        value = float(bits)
                    except ValueError:
                        fail(lineno, f"real value {bits!r} is not a number")
                changes[w][0].append(now)
                changes[w][1].append(value)
                continue
            if in_comment:  # a $comment ... $end among the value changes
                in_comment = w != "$end"
                continue
            c = w[0]
            if c == "#":
                if not w[1:].isdigit():
                    fail(lineno, f"time stamp {w!r} is not a whole number")
                t = int(w[1:])
                if last_time is not None and t < last_time:
                    fail(lineno, f"time goes backwards from #{last_time} to {w}")
                now = last_time = t
            elif c == "$":
                if w == "$comment":
                    in_comment = True
                elif w not in ("$dumpvars", "$dumpall", "$dumpon", "$dumpoff", "$end"):
                    fail(lineno, f"unexpected {w!r} after $enddefinitions")
            elif c in "01xXzZ" and len(w) > 1:
                code = w[1:]
                if code not in changes:
                    fail(lineno, f"value change for undeclared id {code!r}")
                if now is None:
                    fail(lineno, "value change before the first time stamp")
                changes[code][0].append(now)
                changes[code][1].append(int(c) if c in "01" else None)
            elif c in "bB":
                if not _VCD_VALUE_CHARS.match(w[1:] or " "):
                    fail(lineno, f"vector value {w!r} has characters other than 0/1/x/z")
                pending = ("b", w[1:])
            elif c in "rRsS":
                pending = (c.lower(), w[1:])
            else:
                fail(lineno, f"cannot read {w!r}; expected #time, a value change or a $keyword")
        if pending is not None:
            fail(lineno, f"value {pending[0]}{pending[1]} has no signal id after it")

    if in_header:
        what = f"the header stops inside {block}" if block else "the header has no $enddefinitions"
        fail(len(text.rstrip("\n").split("\n")), what)
    if tick_s is None:
        tick_s = 1e-9  # IEEE 1364: no $timescale means the simulator's default; Icarus uses 1s, we assume 1ns
    traces = {}
    for code in order:
        width, names, kind = by_id[code]
        times, values = changes[code]
        tr = Trace(names[0], width, np.asarray(times, dtype=np.int64), values, names[1:], kind)
        for n in names:
            traces[n] = tr
    return Waveform(path, "vcd", tick_s, traces, last_time or 0)


# --------------------------------------------------------------------------- FST

def _read_fst(path: Path) -> Waveform:
    try:
        # Imported here: VCD traces are read without pywellen, and its absence is a
        # user error naming the package, not an ImportError at start-up.
        import pywellen
    except ImportError:
        raise UserError(f"cannot read {path}: FST needs the pywellen package "
                        "(pip install 'pywellen>=0.25,<0.26')") from None
    with _fst_guard(path):
        wave = pywellen.Waveform(str(path))
        hier = [(v.full_name, v.bitwidth, v.signal_id, v) for v in wave.all_vars()]
        tick_s = _fst_tick(wave)
    traces, by_id = {}, {}
    for name, width, sid, var in hier:
        name = name.replace("\\", "")
        key = repr(sid)
        if key in by_id:
            by_id[key].aliases.append(name)
            traces[name] = by_id[key]
            continue
        tr = Trace(name, int(width or 1), loader=_fst_loader(path, var))
        by_id[key] = traces[name] = tr

    def last_time():
        return max((int(t.times[-1]) for t in by_id.values() if len(t.times)), default=0)

    return Waveform(path, "fst", tick_s, traces, last_time)


def _fst_loader(path: Path, var):
    def load():
        with _fst_guard(path):
            sig = var.signal
            pairs = [sig[i] for i in range(len(sig))]
        times = np.fromiter((p[0] for p in pairs), dtype=np.int64, count=len(pairs))
        return times, [_fst_value(p[1]) for p in pairs]
    return load


class _fst_guard:
    """Turn any failure of the FST reader into one :class:`UserError` naming the file.

    The Rust reader prints panics on the process's stderr: they are kept out of the
    terminal while it runs.
    """

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.err = tempfile.TemporaryFile()
        self.redirect = _stderr_to(self.err)
        self.redirect.__enter__()

    def __exit__(self, typ, exc, tb):
        self.redirect.__exit__(typ, exc, tb)
        self.err.close()
        if typ is None or issubclass(typ, (KeyboardInterrupt, SystemExit, UserError)):
            return False
        # pywellen raises RuntimeError, or a Rust panic (a BaseException)
        detail = str(exc).strip().replace("\n", " ") or typ.__name__
        raise UserError(f"{self.path}: the FST file is truncated or malformed ({detail})") from None


def _state_text(v) -> str:
    # Amaranth's simulator writes a decoded value as "NAME/value"; keep the name.
    return "x" if v is None else str(v).rsplit("/", 1)[0] if "/" in str(v) else str(v)


def _fst_tick(wave) -> float:
    ts = wave.timescale
    if ts is None:
        return 1e-9
    unit = str(ts.unit).strip().lower()
    unit = {"second": "s", "seconds": "s"}.get(unit, unit)
    unit = re.sub(r"[^a-z]", "", unit.split(".")[-1])
    return int(ts.factor) * _UNITS_S.get(unit, 1e-9)


def _fst_value(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v
    if isinstance(v, str):
        return _vcd_int(v)
    return None


class _stderr_to:
    """Point file descriptor 2 at ``fh`` for the duration of a ``with`` block."""

    def __init__(self, fh):
        self.fh = fh

    def __enter__(self):
        self.saved = os.dup(2)
        os.dup2(self.fh.fileno(), 2)

    def __exit__(self, *exc):
        os.dup2(self.saved, 2)
        os.close(self.saved)


# --------------------------------------------------------------------------- loading

def load(path) -> Waveform:
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

def parse_time(text, wave: "Waveform | None" = None) -> int:
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
