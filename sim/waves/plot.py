"""Draw a waveform's streams and FSM states as a compact timeline picture."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from supernode.rtl.errors import UserError

from ..outputs import atomic_output
from .reader import _UNITS_S, Waveform, _is_generated, _state_text, find_signal, load, parse_time
from .streams import _rising_edges, find_fsms, find_interfaces

__all__ = ["default_plot_signals", "plot_timeline"]


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


def plot_timeline(path: str | os.PathLike[str], out: str | os.PathLike[str], *,
                  signals: "str | None" = None, start: str | int | None = None,
                  end: str | int | None = None,
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
        clk = find_signal(wave, "clk")
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
    try:
        with atomic_output(out) as tmp:    # in an existing directory, never made here
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return out


def _shade_handshakes(ax, wave: Waveform, rows: dict, t0: int, t1: int, scale: float) -> bool:
    """Shade transfer and stall cycles on each plotted valid row; True if any was."""
    clk = find_signal(wave, "clk")
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
