"""Stream analysis of a waveform: valid/ready handshakes, stalls, idle cycles and FSM states."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from supernode.rtl.errors import UserError

from .reader import (UNKNOWN, Trace, Waveform, _is_generated, _leaf, _matches, _scope,
                     find_signal, load, parse_time)

__all__ = ["Interface", "find_interfaces", "find_fsms", "summarize"]


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


def _state_names_beside(wave: Waveform, name: str) -> dict:
    """State names from the GTKWave translate file the runner wrote beside the wave file."""
    leaf = _leaf(name)
    for table in sorted(Path(wave.path).parent.glob(f"{Path(wave.path).stem}.{leaf}.*.states")):
        names = {}
        for line in table.read_text().splitlines():
            value, _, text = line.partition(" ")
            if value.isdecimal() and text:
                names[int(value)] = text.strip()
        return names
    return {}


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


def summarize(path: str | os.PathLike[str], *, signals: "str | None" = None,
              start: str | int | None = None, end: str | int | None = None,
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
    clk_name = clock if clock in wave.traces else find_signal(wave, clock)
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
        rst_name = reset if reset in wave.traces else find_signal(wave, reset)
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
