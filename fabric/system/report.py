"""Plain-text rendering of estimates, comparisons and the tile-to-supernode story."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, TextIO

from .chip import rtl_tile_predict
from .comparison import compare
from .hardware import chip_totals, describe_sources, load_system, system_totals

if TYPE_CHECKING:
    from .chip import TilePredict
    from .comm import FigureSource
    from .comparison import Comparison
    from .estimate import Estimate
    from .hardware import SystemSpec
    from .slo import SloResult

__all__ = ["format_estimate", "format_comparison", "format_sources", "format_slo", "slo_plot",
           "demo_table"]


def _num(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1e5:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:,.1f}"
        if abs(value) >= 1:
            return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
        return f"{value:.3g}"
    return str(value)


def _table(header, rows, *, left=(0,)) -> str:
    cells = [list(map(str, header))] + [[_num(v) if not isinstance(v, str) else v for v in r]
                                        for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if i in left else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_estimate(e: Estimate) -> str:
    """An estimate as text: headline figures, per-layer breakdown, roofline, notes."""
    if e.kind == "llm":
        per_rank = e.batch / e.ranks
        head = [f"{e.workload} {e.phase} on {e.system}: batch {e.batch} ({per_rank:g} per "
                f"rank), sequence {e.seq_len}, {e.precision}, mapping {e.mapping} "
                f"({e.chips:g} packages, {e.ranks} ranks"
                f"{', two-batch overlap' if e.two_batch_overlap else ''}"
                f"{', spatial pipeline' if e.pipeline == 'spatial' else ''})", ""]
        if e.phase == "decode":
            head.append(f"  {'time per output token':32s} "
                        f"{e.time_per_output_token_s * 1e3:10.3f} ms")
            if e.tokens_per_sequence > 1:
                head.append(f"  {'step time':32s} {e.step_s * 1e3:10.3f} ms "
                            f"({e.tokens_per_sequence:.2f} tokens per sequence per step)")
        else:
            head.append(f"  {'step time (time to first token)':32s} {e.step_s * 1e3:10.3f} ms")
        head += [f"  {'throughput (instance)':32s} {e.tokens_per_s:10,.0f} tokens/s",
                 f"  {'throughput (per package)':32s} {e.tokens_per_s_per_chip:10,.1f} tokens/s",
                 f"  {'kernels, launches + step cost':32s} {e.kernels:10,d} "
                 f"({e.overhead_s * 1e3:.2f} ms)"]
    elif e.kind == "gemm":
        head = [f"{e.workload} ({e.precision}) on {e.system}: {e.chips} package(s)", "",
                f"  {'time':32s} {e.step_s * 1e3:10.3f} ms",
                f"  {'achieved per package':32s} {e.flops / e.step_s / 1e12:10,.1f} TFLOP/s"]
    else:
        comm = [op for b in e.blocks for op in b.ops][0]
        head = [f"{e.workload} on {e.system}: {comm.group} packages on tier {comm.tier}", "",
                f"  {'time':32s} {e.step_s * 1e6:10.3f} us",
                f"  {'algorithm bandwidth':32s} {comm.bytes_per_chip / e.step_s / 1e9:10,.1f} "
                f"GB/s per package"]
    lines = head + [
        f"  {'bound':32s} {e.bound:>10s}",
        f"  {'utilisation':32s} {100 * e.utilization:9.1f} %",
        f"  {'roofline (bound: ' + e.roofline_bound + ')':32s} {e.roofline_s * 1e3:10.3f} ms",
        "",
        "Time per package per step (ms):",
        _table(["", "compute", "memory (HBM)", "on-chip", "fabric", "exposed", "overlapped"],
               [["total", e.compute_s * 1e3, e.memory_s * 1e3, e.onchip_s * 1e3,
                 e.comm_s * 1e3, e.comm_exposed_s * 1e3, e.comm_overlapped_s * 1e3]]),
        f"  memory exposed beyond overlapping compute: {e.memory_exposed_s * 1e3:.3f} ms",
        "",
        "Per layer kind (one instance, ms):",
        _table(["layer", "x", "time", "compute", "memory", "on-chip", "fabric", "exposed"],
               [[b.name, b.repeat, b.time_s * 1e3, b.compute_s * 1e3, b.memory_s * 1e3,
                 b.onchip_s * 1e3, b.comm_s * 1e3, b.comm_exposed_s * 1e3]
                for b in e.blocks]),
        "",
        "Roofline beside the detailed figure (ms): "
        f"compute {e.roofline_compute_s * 1e3:.3f}, memory {e.roofline_memory_s * 1e3:.3f}, "
        f"fabric {e.roofline_fabric_s * 1e3:.3f}",
        f"Resident per package: weights {e.weight_bytes / 1e9:.1f} GB, KV cache "
        f"{e.kv_cache_bytes / 1e9:.1f} GB ({'fits' if e.fits_in_hbm else 'DOES NOT FIT'})",
    ]
    comms = [op for b in e.blocks for op in b.ops if hasattr(op, "pattern")]
    if comms:
        lines += ["", "Collectives (one instance):",
                  _table(["collective", "group", "tier", "hops", "MB", "latency us",
                          "transfer us", "GB/s eff.", "figures"],
                         [[c.name, c.group, c.tier, c.hops, c.bytes_per_chip / 1e6,
                           c.latency_s * 1e6, c.transfer_s * 1e6,
                           c.effective_bandwidth_bytes_per_s / 1e9,
                           "extrapolated" if c.extrapolated else "as modelled"]
                          for c in comms])]
    for note in e.notes:
        lines.append(f"note: {note}")
    if e.network_source:
        lines += ["", f"Network figures: {e.network_source}."]
    if e.extrapolation:
        lines.append(f"Extrapolation: {e.extrapolation}")
    return "\n".join(lines)


def format_slo(result: SloResult) -> str:
    """The batch an SLO search chose, its estimate, and the curve it searched."""
    best = result.best
    what = "time per output token" if best.phase == "decode" else "time to first token"
    lines = [f"Largest throughput with {what} <= {result.limit_s * 1e3:g} ms: batch "
             f"{best.batch // best.ranks} per rank ({best.batch} over {best.ranks} ranks)", "",
             format_estimate(best), "", "Throughput-latency curve searched:",
             _table(["batch/rank", what + " ms", "tokens/s per package", "fits HBM", ""],
                    [[p.batch_per_rank, p.latency_s * 1e3, p.tokens_per_s_per_chip,
                      "yes" if p.fits else "no",
                      "<- chosen" if p.batch_per_rank == best.batch // best.ranks else
                      ("over the limit" if p.latency_s > result.limit_s else "")]
                     for p in result.curve])]
    return "\n".join(lines)


def slo_plot(result: SloResult, path: str | os.PathLike[str]) -> None:
    """Throughput per package against latency for every batch searched, the limit drawn."""
    import matplotlib                   # deferred: matplotlib takes a second to import
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = result.best
    fig, ax = plt.subplots(figsize=(7, 4.5))
    fits = [p for p in result.curve if p.fits]
    over = [p for p in result.curve if not p.fits]
    ax.plot([p.latency_s * 1e3 for p in fits], [p.tokens_per_s_per_chip for p in fits], "o-",
            color="tab:blue", label="fits in HBM")
    if over:
        ax.plot([p.latency_s * 1e3 for p in over], [p.tokens_per_s_per_chip for p in over],
                "x", color="tab:gray", label="does not fit")
    for p in fits:
        ax.annotate(str(p.batch_per_rank), (p.latency_s * 1e3, p.tokens_per_s_per_chip),
                    textcoords="offset points", xytext=(3, 3), fontsize=6)
    ax.axvline(result.limit_s * 1e3, color="tab:red", linestyle="--", label="limit")
    latency = (best.time_per_output_token_s if best.phase == "decode" else best.step_s)
    ax.plot([latency * 1e3], [best.tokens_per_s_per_chip], "*", color="tab:red",
            markersize=14, label=f"chosen: {best.batch // best.ranks} per rank")
    what = "time per output token" if best.phase == "decode" else "time to first token"
    ax.set_xlabel(f"{what} (ms)")
    ax.set_ylabel("tokens/s per package")
    ax.set_title(f"{best.workload} {best.phase} on {best.system} (labels: batch per rank)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_sources(system: SystemSpec, *, published_only: bool = False) -> str:
    """Every number of a system with its source, assumptions marked."""
    rows = []
    for level, key, value, prov in describe_sources(system):
        if published_only and prov.assumption:
            continue
        rows.append([f"{level}.{key}", _human(key, value),
                     ("ASSUMPTION: " if prov.assumption else "") + prov.text])
    return _table(["figure", "value", "source"], rows, left=(0, 2))


_HUMAN_UNITS = (("_bytes_per_s", "B/s"), ("_bytes", "B"), ("_hz", "Hz"), ("_w", "W"),
                ("_ns", "ns"))


def _human(key: str, value) -> str:
    """``1.9124e9`` for ``clock_hz`` as ``1.912 GHz``."""
    if isinstance(value, str):
        return value
    for suffix, unit in _HUMAN_UNITS:
        if key.endswith(suffix):
            for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
                if abs(value) >= factor:
                    return f"{value / factor:.4g} {prefix}{unit}"
            return f"{value:.4g} {unit}"
    return _num(value)


def format_comparison(c: Comparison) -> str:
    """Both tables with the ratio column, then the sources of each system."""
    names = c.names
    ratio = f"{names[0]}/{names[1]}" if len(names) > 1 else "ratio"
    lines = ["System level:",
             _table(["quantity", "unit", *names, ratio],
                    [[r.quantity, r.unit, *r.values,
                      "" if r.ratio() is None else f"{r.ratio():.2f}x"]
                     for r in c.system_table])]
    if c.workload_table:
        lines += ["", "Workload level (each system under its own default mapping):",
                  _table(["quantity", "unit", *names, ratio],
                         [[r.quantity, r.unit, *r.values,
                           "" if r.ratio() is None else f"{r.ratio():.2f}x"]
                          for r in c.workload_table])]
        notes = sorted({f"{e.system}: {n}" for case in c.estimates for e in case
                        for n in e.notes})
        lines += [f"note: {n}" for n in notes]
        sources = {}
        carried = {}
        for case in c.estimates:
            for e in case:
                if e.network_source:
                    sources.setdefault(e.system, set()).add(e.network_source)
                if e.extrapolation:
                    carried.setdefault(e.extrapolation, set()).add(e.system)
        if sources:
            lines += ["", "Network figures: " + "; ".join(
                f"{system}: {'; '.join(sorted(texts))}" for system, texts in sources.items())
                + "."]
        for text, systems in carried.items():
            lines.append(f"Extrapolation ({', '.join(sorted(systems))}): {text}")
    for s in c.systems:
        lines += ["", f"Sources for {s.name} ({s.path.name}, {s.chip.path.name}); "
                  f"published figures carry a tag, assumptions are marked:",
                  format_sources(s)]
    return "\n".join(lines)


#: The service level both systems are compared at in the demo.
DEMO_TPOT_SLO_S = 0.05


def demo_table(file: TextIO | None = None, *, predict: TilePredict | None = None,
               network: FigureSource | None = None) -> None:
    """Print the tile -> chip -> supernode -> comparison story (for ``supernode demo``).

    Tile: cycles of one GEMM on one tile from the RTL-checked cycle model. Chip: the
    derived peak beside the published one. Supernode: derived totals beside the published
    ones. Then the CloudMatrix 384 vs GB200 NVL72 tables for DeepSeek-R1 decode at the same
    time per output token (:data:`DEMO_TPOT_SLO_S`).
    """
    out = file or sys.stdout
    predict = predict or rtl_tile_predict()
    systems = [load_system("cloudmatrix384"), load_system("gb200-nvl72")]
    core = systems[0].chip.core
    tile = predict(rows=core.tile_rows, cols=core.tile_cols, dataflow=core.tile_dataflow,
                   m=64, k=7168, n=64)
    print(f"Tile ({core.tile_rows}x{core.tile_cols}, {core.tile_dataflow}, RTL-checked cycle "
          f"model): 64x7168x64 GEMM = {tile.total_cycles:,} cycles, utilisation "
          f"{100 * tile.utilization:.1f} %", file=out)
    rows = []
    for s in systems:
        ct = chip_totals(s.chip)
        for key, pub in s.chip.published.items():
            rows.append([s.chip.name, key, ct[key] / 1e12, pub.value / 1e12,
                         "yes" if pub.matches(ct[key]) else "NO"])
    print("\nChip: derived peak (cores x MACs/cycle x 2 x clock) vs published, TFLOPS", file=out)
    print(_table(["package", "figure", "derived", "published", "match"], rows), file=out)
    rows, reasons = [], []
    for s in systems:
        st = system_totals(s)
        for key, pub in s.published.items():
            words = pub.text.split()
            unit = " ".join(words[1:])
            scale = pub.value / float(words[0]) if float(words[0]) else 1.0
            derived = f"{st[key] / scale:,.4g}" + (f" {unit}" if unit else "")
            mark = ""
            if pub.tolerance_reason:
                reasons.append(pub.tolerance_reason)
                mark = f"({len(reasons)})"
            rows.append([s.name, key, derived, pub.text,
                         "yes" if pub.matches(st[key]) else "NO", mark])
    print("\nSupernode: derived totals (package x packages) vs published", file=out)
    print(_table(["system", "figure", "derived", "published", "match", ""], rows), file=out)
    for i, reason in enumerate(reasons, 1):
        print(f"({i}) {reason}", file=out)
    c = compare(systems, ["deepseek-r1"], phases=["decode"], network=network, predict=predict,
                tpot_slo_s=DEMO_TPOT_SLO_S)
    print(f"\nDeepSeek-R1 decode on each system's published deployment shape, each at the batch "
          f"that gives the most throughput with a time per output token of at most "
          f"{DEMO_TPOT_SLO_S * 1e3:g} ms (supernode validate shows how such estimates compare "
          f"with measured deployments):", file=out)
    text = format_comparison(c)
    print(text.split("\nSources for")[0].rstrip(), file=out)
