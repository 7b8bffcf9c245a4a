"""`supernode waves`: summarise the valid/ready streams of a VCD or FST file and draw a timeline."""

import json
from pathlib import Path

from supernode.rtl.errors import UserError
from supernode.sim import waves
from supernode.sim.gtkw import write_gtkw
from supernode.sim.outputs import check_output

from . import positive_int

__all__ = ["register"]


def register(subparsers):
    p = subparsers.add_parser(
        "waves", help="summarise the streams of a waveform (VCD or FST), draw a timeline",
        description="Count, for every valid/ready stream of a waveform (found by the names "
                    "Amaranth gives stream ports: a__valid, a__ready, a__payload), the "
                    "transfers, stall cycles (valid and not ready) and idle cycles on the "
                    "rising edges of the clock, sampling each signal just before the edge. "
                    "Reset cycles are left out. Optionally draw a timeline to PNG and write "
                    "a GTKWave save file.")
    p.add_argument("file", metavar="FILE",
                   help="waveform file (.vcd or .fst), or a run directory holding one")
    p.add_argument("--signals", metavar="PATTERN",
                   help="comma-separated globs choosing streams, FSMs and plotted signals; "
                        "a glob matches a whole name or its tail after any '.' "
                        "('a__*', 'tile.*valid')")
    p.add_argument("--from", dest="start", metavar="T",
                   help="window start: ticks of the file or a time with unit (350ns)")
    p.add_argument("--to", dest="end", metavar="T", help="window end (inclusive)")
    p.add_argument("--clock", default="clk", metavar="NAME", help="clock signal (default: clk)")
    p.add_argument("--reset", default="rst", metavar="NAME",
                   help="reset signal whose high cycles are left out (default: rst; "
                        "'none' counts every cycle)")
    p.add_argument("--bins", type=positive_int, default=20, metavar="N",
                   help="slices of the window for utilisation over time (default: 20)")
    p.add_argument("--png", metavar="FILE", help="draw a timeline of the chosen signals here")
    p.add_argument("--gtkw", metavar="FILE", help="write a GTKWave save file here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    if Path(args.file).is_dir():  # a run directory: its one wave file
        found = sorted(p for p in Path(args.file).iterdir() if p.suffix in (".vcd", ".fst"))
        if len(found) != 1:
            raise UserError(f"directory {args.file} holds {len(found)} .vcd/.fst files; "
                            "name the wave file itself")
        args.file = str(found[0])
    png = check_output(args.png, flag="--png", suffixes=(".png",)) if args.png else None
    gtkw = check_output(args.gtkw, flag="--gtkw", suffixes=(".gtkw",)) if args.gtkw else None
    wave = waves.load(args.file)
    _check_signals(wave, args.signals)
    reset = None if str(args.reset).lower() == "none" else args.reset
    summary = waves.summarize(args.file, wave=wave, signals=args.signals, start=args.start,
                              end=args.end, clock=args.clock, reset=reset, bins=args.bins)
    if png:
        summary["png"] = str(waves.plot_timeline(args.file, png, wave=wave, signals=args.signals,
                                                 start=args.start, end=args.end))
    if gtkw:
        summary["gtkw"] = str(write_gtkw(args.file, gtkw, wave=wave))
    if args.json:
        print(json.dumps(summary))
        return 0
    print(_table(summary))
    return 0


def _check_signals(wave, signals) -> None:
    """Refuse a ``--signals`` glob that matches no signal: it would silently choose nothing."""
    for pattern in (p.strip() for p in (signals or "").split(",")):
        if pattern and not wave.match(pattern):
            example = ", ".join(wave.names()[:3])
            raise UserError(f"--signals pattern {pattern!r} matches no signal of {wave.path}; "
                            f"its names look like {example}")


def _table(s: dict) -> str:
    w = s["window"]
    lines = [
        f"{s['file']} ({s['format'].upper()}, tick {s['timescale']}, clock {s['clock']}"
        + (f", period {s['clock_period_ticks']} ticks" if s["clock_period_ticks"] else "") + ")",
        f"window {w['start']}..{w['end']}: {w['cycles']} cycles"
        + (f" ({w['reset_cycles']} more in reset, left out)" if w["reset_cycles"] else ""),
    ]
    if not s["interfaces"]:
        lines.append("no valid/ready stream found (expected names such as a__valid, a__ready)")
    else:
        name_w = max(len("stream"), *(len(i["name"]) for i in s["interfaces"]))
        lines.append(f"{'stream':<{name_w}}  {'bits':>5} {'transfers':>9} {'stalls':>7} "
                     f"{'idle':>7} {'util':>6} {'max stall':>9}  utilisation over time")
        for i in s["interfaces"]:
            spark = _spark(i["utilisation_over_time"]["utilisation"])
            # A stream without ready (credit-flow links) cannot stall: say so, not "0".
            stalls, longest = ((i["stalls"], i["longest_stall"]) if i["ready"] else ("-", "-"))
            lines.append(f"{i['name']:<{name_w}}  {i['payload_bits']:>5} {i['transfers']:>9} "
                         f"{stalls:>7} {i['idle']:>7} {i['utilisation']:>6.1%} "
                         f"{longest:>9}  {spark}")
    for f in s["fsms"]:
        states = ", ".join(f"{k}: {v}" for k, v in f["cycles_in_state"].items())
        lines.append(f"FSM {f['name']}: cycles in state {states}")
    for key in ("png", "gtkw"):
        if key in s:
            lines.append(f"wrote {s[key]}")
    return "\n".join(lines)


def _spark(values) -> str:
    blocks = " ▁▂▃▄▅▆▇█"
    return "".join(blocks[min(8, int(round(v * 8)))] for v in values)
