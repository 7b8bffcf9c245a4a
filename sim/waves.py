"""Read VCD and FST waveforms, summarise their valid/ready streams and draw timelines."""

import fnmatch
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtl.errors import UserError

__all__ = [
    "Trace", "Waveform", "load", "summarize", "find_interfaces", "find_fsms",
    "parse_time", "plot_timeline", "default_plot_signals", "Interface", "UNKNOWN",
]

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


# --------------------------------------------------------------------------- analysis

@dataclass(frozen=True)
class Interface:
    """A valid/ready stream found by its port names.

    Members
    -------
    name : str
        Common prefix, such as ``top.a`` or ``top.ports__0``.
    valid, ready : str
        Names of the handshake signals (``ready`` is ``None`` for an always-ready stream).
    payload : tuple of str
        Names of the payload signals.
    """
    name: str
    valid: str
    ready: "str | None"
    payload: tuple


def find_interfaces(wave: Waveform, pattern: "str | None" = None) -> list:
    """Every ``<prefix>__valid`` with its ``__ready`` and ``__payload*`` signals.

    The same stream seen in several scopes (a port and the wire it drives) is reported
    once, under its shortest name. With ``pattern``, keep streams whose name or any of
    whose signals matches it.
    """
    names = wave.names()
    name_set = set(names)
    wanted = set(wave.match(pattern)) if pattern else name_set
    found, seen = [], set()
    for n in sorted(names, key=lambda s: (s.count("."), s)):
        if not n.endswith("__valid") or _is_generated(n):
            continue
        prefix = n[: -len("__valid")]
        ready = prefix + "__ready"
        ready = ready if ready in name_set else None
        payload = tuple(p for p in names
                        if p.startswith(prefix + "__payload") and _scope(p) == _scope(n))
        if pattern and not ({n, ready, *payload} & wanted or _matches(prefix, pattern)):
            continue
        # A port and the wire that drives it may be dumped as two signals (Icarus does):
        # the same port name with the same valid/ready history is one stream.
        key = (_leaf(prefix), _history(wave[n]), _history(wave[ready]) if ready else None)
        if key in seen:
            continue
        seen.add(key)
        found.append(Interface(prefix, n, ready, payload))
    return sorted(found, key=lambda i: i.name)


def _history(trace: Trace) -> tuple:
    return (trace.times.tobytes(), tuple(trace.values))


def find_fsms(wave: Waveform) -> list:
    """Names of FSM state registers (Amaranth names them ``<fsm>_state``), one per signal."""
    out, seen = [], set()
    for n in sorted(wave.names(), key=lambda s: (s.count("."), s)):
        if (_leaf(n) == "fsm_state" or _leaf(n).endswith("_state")) and not _is_generated(n):
            if id(wave[n]) not in seen:
                seen.add(id(wave[n]))
                out.append(n)
    return out


def _pick(wave: Waveform, leaf: str) -> "str | None":
    cands = [n for n in wave.names() if _leaf(n) == leaf]
    return min(cands, key=lambda s: (_is_generated(s), s.count("."), s)) if cands else None


def _state_names_beside(wave: Waveform, name: str) -> dict:
    """State names from the GTKWave translate file the runner wrote beside the wave file."""
    leaf = _leaf(name)
    for table in sorted(Path(wave.path).parent.glob(f"{Path(wave.path).stem}.{leaf}.*.states")):
        names = {}
        for line in table.read_text().splitlines():
            value, _, text = line.partition(" ")
            if value.isdigit() and text:
                names[int(value)] = text.strip()
        return names
    return {}


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


def _rising_edges(clk: Trace) -> np.ndarray:
    vals = np.array([UNKNOWN if v is None else v for v in clk.values], dtype=np.int64)
    if len(vals) < 2:
        return np.zeros(0, dtype=np.int64)
    rise = (vals[1:] == 1) & (vals[:-1] == 0)
    return clk.times[1:][rise]


def _longest_run(mask: np.ndarray) -> int:
    if not mask.any():
        return 0
    padded = np.concatenate(([0], mask.astype(np.int8), [0]))
    d = np.diff(padded)
    return int((np.flatnonzero(d == -1) - np.flatnonzero(d == 1)).max())


def summarize(path, *, signals: "str | None" = None, start=None, end=None,
              clock: str = "clk", reset: "str | None" = "rst", bins: int = 20,
              wave: "Waveform | None" = None) -> dict:
    """Summarise every valid/ready stream of a waveform, cycle by cycle.

    Cycles are the rising edges of ``clock`` between ``start`` and ``end`` (inclusive,
    in ticks or with a unit); each signal is sampled just before the edge, which is
    what a flop sees. Edges where ``reset`` (if the file has it) is high are counted
    apart and left out. Per stream: ``transfers`` (valid and ready), ``stalls`` (valid
    and not ready), ``idle`` (not valid), ``utilisation`` (transfers per cycle), the
    longest stall and the utilisation in ``bins`` equal slices of the window. Per FSM
    state register: cycles spent in each state.
    """
    wave = wave if wave is not None else load(path)
    if not isinstance(bins, int) or bins <= 0:
        raise UserError(f"bins must be a positive whole number, not {bins!r}")
    clk_name = clock if clock in wave.traces else _pick(wave, clock)
    if clk_name is None:
        raise UserError(f"{wave.path} has no clock signal named {clock!r}; "
                        "name the clock with --clock")
    edges = _rising_edges(wave[clk_name])
    t0 = parse_time(start, wave) if start is not None else None
    t1 = parse_time(end, wave) if end is not None else None
    if t0 is not None and t1 is not None and t1 < t0:
        raise UserError(f"window end {end!r} is before its start {start!r}")
    if t0 is not None:
        edges = edges[edges >= t0]
    if t1 is not None:
        edges = edges[edges <= t1]
    rst_name = None
    if reset:
        rst_name = reset if reset in wave.traces else _pick(wave, reset)
    in_reset = np.zeros(len(edges), dtype=bool)
    if rst_name is not None:
        in_reset = wave[rst_name].sample(edges) == 1
    cyc = edges[~in_reset]
    n = len(cyc)
    period = int(np.median(np.diff(edges))) if len(edges) > 1 else None

    interfaces = []
    for itf in find_interfaces(wave, signals):
        valid = wave[itf.valid].sample(cyc) == 1
        ready = (wave[itf.ready].sample(cyc) == 1) if itf.ready else np.ones(n, dtype=bool)
        fire, stall = valid & ready, valid & ~ready
        slices = [s for s in np.array_split(np.arange(n), min(bins, n)) if len(s)] if n else []
        interfaces.append({
            "name": itf.name,
            "valid": itf.valid,
            "ready": itf.ready,
            "payload": list(itf.payload),
            "payload_bits": sum(wave[p].width for p in itf.payload),
            "cycles": n,
            "transfers": int(fire.sum()),
            "stalls": int(stall.sum()),
            "idle": int((~valid).sum()),
            "utilisation": float(fire.sum() / n) if n else 0.0,
            "stall_fraction": float(stall.sum() / n) if n else 0.0,
            "longest_stall": _longest_run(stall),
            "first_transfer_time": int(cyc[fire][0]) if fire.any() else None,
            "last_transfer_time": int(cyc[fire][-1]) if fire.any() else None,
            "utilisation_over_time": {
                "bin_start_times": [int(cyc[s[0]]) for s in slices],
                "bin_cycles": [len(s) for s in slices],
                "utilisation": [float(fire[s].mean()) for s in slices],
            },
        })
    fsms = []
    for name in find_fsms(wave):
        if signals and name not in wave.match(signals):
            continue
        vals = wave[name].sample(cyc)
        if wave[name].kind != "string":
            names = _state_names_beside(wave, name)
            vals = np.array(["x" if v is None or v == UNKNOWN else names.get(int(v), str(int(v)))
                             for v in vals], dtype=object)
        states, counts = np.unique(vals.astype(str), return_counts=True)
        fsms.append({"name": name, "cycles_in_state": {str(s): int(c) for s, c in zip(states, counts)}})
    return {
        "file": str(wave.path),
        "format": wave.format,
        "timescale": wave.timescale_text(),
        "clock": clk_name,
        "clock_period_ticks": period,
        "reset": rst_name,
        "window": {"start": int(edges[0]) if len(edges) else None,
                   "end": int(edges[-1]) if len(edges) else None,
                   "edges": int(len(edges)), "reset_cycles": int(in_reset.sum()), "cycles": n},
        "interfaces": interfaces,
        "fsms": fsms,
    }


# --------------------------------------------------------------------------- drawing

def default_plot_signals(wave: Waveform, signals: "str | None" = None, limit: int = 24) -> list:
    """Signals for a timeline: those matching ``signals``, else every stream's
    valid/ready/payload and every FSM state, skipping generated nets."""
    if signals:
        chosen = [n for n in wave.match(signals) if not _is_generated(n)]
    else:
        chosen = []
        for itf in find_interfaces(wave):
            chosen += [itf.valid] + ([itf.ready] if itf.ready else []) + list(itf.payload)
        chosen += find_fsms(wave)
    out, seen = [], set()
    for n in chosen:
        if id(wave[n]) not in seen:
            seen.add(id(wave[n]))
            out.append(n)
    return out[:limit]


def plot_timeline(path, out, *, signals: "str | None" = None, start=None, end=None,
                  wave: "Waveform | None" = None, title: "str | None" = None) -> Path:
    """Draw a compact timeline of chosen signals to a PNG and return its path.

    One-bit signals are drawn as square waves; wider ones as bus segments labelled
    with their hexadecimal value (or state name) where there is room. On the valid row
    of each stream, clock cycles that end in a transfer are shaded green and stall
    cycles (valid, not ready) red.
    """
    # Deferred: matplotlib takes over half a second to import; only the plot needs it.
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wave = wave if wave is not None else load(path)
    names = default_plot_signals(wave, signals)
    if not names:
        raise UserError(f"no signal of {wave.path} matches {signals!r}; "
                        "give a glob such as '*valid,*ready'")
    t0 = parse_time(start, wave) if start is not None else 0
    if end is not None:
        t1 = parse_time(end, wave)
    else:  # the last change of what is drawn (and of the clock), not of every net in the file
        clk = _pick(wave, "clk")
        t1 = max((int(wave[n].times[-1]) for n in names + ([clk] if clk else [])
                  if len(wave[n].times)), default=0)
    if t1 <= t0:
        raise UserError(f"timeline window {start!r}..{end!r} is empty; end must be after start")
    scale, unit = _plot_unit(wave.tick_s, t1 - t0)
    fig, ax = plt.subplots(figsize=(10, 0.9 + 0.32 * len(names)), dpi=110)
    for row, name in enumerate(reversed(names)):
        tr = wave[name]
        first = int(np.searchsorted(tr.times, t0, side="right")) - 1
        before = tr.values[first] if first >= 0 else None
        keep = (tr.times > t0) & (tr.times < t1)
        times = np.concatenate(([t0], tr.times[keep], [t1])).astype(float)
        vals = [before] + [tr.values[i] for i in np.flatnonzero(keep)]
        # Simulators may dump a value again unchanged; draw one segment for it.
        same = [k for k in range(1, len(vals)) if vals[k] == vals[k - 1]]
        if same:
            times = np.delete(times, same)
            vals = [v for k, v in enumerate(vals) if k not in set(same)]
        y0 = row
        xs = (times - t0) * scale
        if tr.width == 1 and tr.kind == "bits":
            ys = [y0 + 0.1 + 0.7 * (v == 1) for v in vals]
            ax.step(xs[:-1].tolist() + [xs[-1]], ys + [ys[-1]], where="post", lw=0.9, color="tab:green")
            unknown = [(a, b - a) for a, b, v in zip(xs[:-1], xs[1:], vals) if v is None]
            if unknown:
                ax.broken_barh(unknown, (y0 + 0.1, 0.7), color="tab:red", alpha=0.3, lw=0)
        else:
            span = xs[-1] - xs[0]
            for colour, is_known in (("tab:blue", True), ("tab:red", False)):
                bars = [(a, b - a) for a, b, v in zip(xs[:-1], xs[1:], vals)
                        if b > a and (v is not None) == is_known]
                if bars:
                    ax.broken_barh(bars, (y0 + 0.15, 0.6), facecolor=colour, alpha=0.15,
                                   edgecolor=colour, lw=0.6)
            for a, b, v in zip(xs[:-1], xs[1:], vals):
                # Label a segment only where the text fits (about 7 px a character).
                if (b - a) / span * 10 * 110 < 11:
                    continue
                label = ("x" if v is None else f"{v:x}" if isinstance(v, int)
                         else f"{v:g}" if isinstance(v, float) else _state_text(v))
                if (b - a) / span * 10 * 110 > 7 * len(label) + 4:
                    ax.text((a + b) / 2, y0 + 0.45, label, ha="center", va="center", fontsize=6.5)
    rows = {name: row for row, name in enumerate(reversed(names))}
    marked = _shade_handshakes(ax, wave, rows, t0, t1, scale)
    ax.set_yticks([r + 0.45 for r in range(len(names))])
    ax.set_yticklabels([n.split(".", 1)[-1] if n.count(".") else n for n in reversed(names)],
                       fontsize=7)
    ax.set_ylim(-0.2, len(names))
    ax.set_xlim(0, (t1 - t0) * scale)
    ax.set_xlabel(f"time from {t0 * wave.tick_s / _UNITS_S[unit]:g} {unit} ({unit})", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", lw=0.3, alpha=0.5)
    ax.set_title((title or Path(wave.path).name)
                 + ("   (green: transfer cycles, red: stall cycles)" if marked else ""), fontsize=9)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def _shade_handshakes(ax, wave: Waveform, rows: dict, t0: int, t1: int, scale: float) -> bool:
    """Shade transfer and stall cycles on each plotted valid row; True if any was."""
    clk = _pick(wave, "clk")
    if clk is None:
        return False
    edges = _rising_edges(wave[clk])
    if len(edges) < 2:
        return False
    period = int(np.median(np.diff(edges)))
    edges = edges[(edges > t0) & (edges <= t1)]
    marked = False
    for itf in find_interfaces(wave):
        row = rows.get(itf.valid)
        if row is None or not len(edges):
            continue
        valid = wave[itf.valid].sample(edges) == 1
        ready = (wave[itf.ready].sample(edges) == 1) if itf.ready else np.ones(len(edges), bool)
        for mask, colour in ((valid & ready, "tab:green"), (valid & ~ready, "tab:red")):
            starts = (np.maximum(edges[mask] - period, t0) - t0) * scale
            ends = (edges[mask] - t0) * scale
            if len(starts):
                ax.broken_barh(list(zip(starts, ends - starts)), (row + 0.05, 0.8),
                               color=colour, alpha=0.18, lw=0)
                marked = True
    return marked


def _plot_unit(tick_s: float, span_ticks: int):
    span_s = span_ticks * tick_s
    for unit in ("s", "ms", "us", "ns", "ps", "fs"):
        if span_s >= _UNITS_S[unit] * 1:
            return tick_s / _UNITS_S[unit], unit
    return tick_s / _UNITS_S["fs"], "fs"
