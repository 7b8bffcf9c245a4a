"""Side-by-side of two systems: the hardware table, the workload table and a roofline plot."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .estimate import estimate
from .slo import slo_search
from .hardware import SystemSpec, describe_sources, load_system, system_totals
from .workload import PHASES, Workload, load_workload

if TYPE_CHECKING:
    from .chip import TilePredict
    from .comm import FigureSource
    from .estimate import Estimate

__all__ = ["Comparison", "Row", "compare", "system_rows", "workload_rows", "roofline_plot",
           "DEFAULT_WORKLOADS"]

#: Workloads compared when none is named.
DEFAULT_WORKLOADS = ("deepseek-r1", "llama3-70b")


@dataclass(frozen=True)
class Row:
    """One line of a comparison table: a quantity, its unit and one value per system."""
    quantity: str
    unit: str
    values: tuple
    note: str = ""

    def ratio(self) -> float | None:
        """First system over second, when both are positive numbers."""
        a, b = (self.values + (None, None))[:2]
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b and a:
            return a / b
        return None


@dataclass(frozen=True)
class Comparison:
    """Two (or more) systems: their totals, the estimates and both tables.

    Members
    -------
    systems : tuple of SystemSpec
    estimates : tuple of tuple of Estimate
        One tuple per workload case, one estimate per system.
    system_table, workload_table : tuple of Row
    """
    systems: tuple
    estimates: tuple
    system_table: tuple
    workload_table: tuple

    @property
    def names(self) -> tuple:
        return tuple(s.name for s in self.systems)

    def to_dict(self) -> dict:
        """One JSON object: both tables with ratios, every estimate and the sources."""
        def table(rows):
            return [{"quantity": r.quantity, "unit": r.unit,
                     "values": dict(zip(self.names, r.values)), "ratio": r.ratio(),
                     "note": r.note} for r in rows]
        return {
            "systems": list(self.names),
            "ratio": f"{self.names[0]} / {self.names[1]}" if len(self.names) > 1 else None,
            "system_table": table(self.system_table),
            "workload_table": table(self.workload_table),
            "estimates": [[e.to_dict() for e in case] for case in self.estimates],
            "sources": {s.name: _sources(s) for s in self.systems},
        }

    def to_csv(self) -> str:
        """Both tables as CSV: ``table, quantity, unit, <system>..., ratio, note``."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["table", "quantity", "unit", *self.names, "ratio", "note"])
        for label, rows in (("system", self.system_table), ("workload", self.workload_table)):
            for r in rows:
                ratio = r.ratio()
                writer.writerow([label, r.quantity, r.unit, *r.values,
                                 "" if ratio is None else f"{ratio:.4g}", r.note])
        return out.getvalue()


def _sources(system: SystemSpec) -> dict:
    return {f"{level}.{key}": {"value": value, "source": prov.text,
                               "assumption": prov.assumption}
            for level, key, value, prov in describe_sources(system)}


def system_rows(systems: Sequence[SystemSpec]) -> tuple[Row, ...]:
    """The hardware table: compute, HBM, fabric, power and the per-watt ratios."""
    totals = [system_totals(s) for s in systems]

    def row(quantity, unit, fn, note=""):
        return Row(quantity, unit, tuple(fn(s, t) for s, t in zip(systems, totals)), note)

    def eight_bit(s, t):
        return max((t.get(f"{p}_dense_flops", 0.0) for p in ("fp8", "int8")), default=0.0)

    return (
        row("packages", "", lambda s, t: s.chips),
        row("package", "", lambda s, t: s.chip.name),
        row("BF16 dense", "PFLOPS", lambda s, t: t["bf16_dense_flops"] / 1e15,
            "cores x MACs/cycle x 2 x clock x packages"),
        row("8-bit dense", "PFLOPS", lambda s, t: eight_bit(s, t) / 1e15,
            "the chip's 8-bit format: FP8 where it has one, else INT8"),
        row("HBM capacity", "TB", lambda s, t: t["hbm_capacity_bytes"] / 1e12),
        row("HBM bandwidth", "TB/s", lambda s, t: t["hbm_bandwidth_bytes_per_s"] / 1e12),
        row("scale-up bandwidth", "TB/s", lambda s, t: t["scale_up_bandwidth_bytes_per_s"] / 1e12,
            "per direction, all packages"),
        row("scale-out bandwidth", "Tb/s",
            lambda s, t: t["scale_out_bandwidth_bytes_per_s"] * 8 / 1e12,
            "per direction, all packages"),
        row("switch chips", "", lambda s, t: t["l1_switches"] + t["l2_switches"]),
        row("power (all-in)", "kW", lambda s, t: s.power_w / 1e3),
        row("BF16 per watt", "TFLOPS/kW", lambda s, t: t["bf16_dense_flops"] / 1e12 / (s.power_w / 1e3)),
        row("HBM bandwidth per watt", "TB/s/kW",
            lambda s, t: t["hbm_bandwidth_bytes_per_s"] / 1e12 / (s.power_w / 1e3)),
        row("HBM capacity per watt", "TB/kW",
            lambda s, t: t["hbm_capacity_bytes"] / 1e12 / (s.power_w / 1e3)),
    )


def workload_rows(estimates: Iterable[Sequence[Estimate]], systems: Sequence[SystemSpec]
                  ) -> tuple[Row, ...]:
    """The workload table: one block of rows per workload case."""
    rows = []
    for case in estimates:
        first = case[0]
        label = f"{first.workload} {first.phase}"
        power = {s.name: s.power_w for s in systems}

        def row(quantity, unit, fn, note=""):
            return Row(f"{label}: {quantity}", unit, tuple(fn(e) for e in case), note)

        rows += [
            row("mapping", "", lambda e: e.mapping),
            row("packages x ranks", "", lambda e: f"{e.chips:g} x {e.ranks // max(1, round(e.chips))}"),
            row("batch per rank x seq", "", lambda e: f"{e.batch // e.ranks} x {e.seq_len} "
                f"{e.precision}"),
            row("step time" if first.phase == "prefill" else "time per output token", "ms",
                lambda e: (e.step_s if e.phase == "prefill" else e.time_per_output_token_s)
                * 1e3),
            row("throughput", "tokens/s", lambda e: e.tokens_per_s),
            row("throughput per package", "tokens/s", lambda e: e.tokens_per_s_per_chip),
            row("throughput per kW", "tokens/s/kW",
                lambda e: e.tokens_per_s / (power[e.system] / 1e3)),
            row("compute", "ms", lambda e: e.compute_s * 1e3, "tile model + vector units"),
            row("memory (HBM)", "ms", lambda e: e.memory_s * 1e3),
            row("memory exposed", "ms", lambda e: e.memory_exposed_s * 1e3,
                "beyond the compute it overlaps"),
            row("fabric", "ms", lambda e: e.comm_s * 1e3, "network model"),
            row("fabric exposed", "ms", lambda e: e.comm_exposed_s * 1e3),
            row("fabric overlapped", "ms", lambda e: e.comm_overlapped_s * 1e3),
            row("bound", "", lambda e: e.bound),
            row("utilisation", "%", lambda e: 100.0 * e.utilization, "of the peak at this precision"),
            row("roofline", "ms", lambda e: e.roofline_s * 1e3,
                "max(FLOPs/peak, bytes/HBM, bytes/link)"),
            row("roofline bound", "", lambda e: e.roofline_bound),
            row("fits in HBM", "", lambda e: "yes" if e.fits_in_hbm else "no"),
        ]
    return tuple(rows)


def compare(systems: Iterable[SystemSpec | str] = ("cloudmatrix384", "gb200-nvl72"),
            workloads: Iterable[Workload | str] | None = None, *,
            phases: Iterable[str] | None = None, batch: int | None = None,
            seq_len: int | None = None, precision: str | None = None,
            network: FigureSource | None = None, predict: TilePredict | None = None,
            tpot_slo_s: float | None = None, ttft_slo_s: float | None = None,
            **run: Any) -> Comparison:
    """Compare systems on their hardware and on each workload and phase.

    ``workloads`` defaults to :data:`DEFAULT_WORKLOADS`, ``phases`` to both; each system
    runs each workload under its own default deployment. With ``tpot_slo_s`` (decode) or
    ``ttft_slo_s`` (prefill) each system gets the batch that maximises its throughput
    within that latency (:func:`~supernode.fabric.system.slo.slo_search`), so both are compared at
    the same service level; otherwise ``batch`` is per system when given, else the
    workload's per-rank default times the ranks deployed.
    """
    specs = tuple(load_system(s) if isinstance(s, str) else s for s in systems)
    names = workloads or DEFAULT_WORKLOADS
    loaded = [load_workload(w) if isinstance(w, str) else w for w in names]
    cases = []
    for work in loaded:
        for phase in (phases or PHASES):
            if getattr(work, "kind", "llm") != "llm" and cases and phase != PHASES[0]:
                continue
            limit = tpot_slo_s if phase == "decode" else ttft_slo_s
            if limit is not None and getattr(work, "kind", "llm") == "llm":
                cases.append(tuple(slo_search(s, work, phase=phase, limit_s=limit,
                                              seq_len=seq_len, precision=precision,
                                              network=network, predict=predict, **run).best
                                   for s in specs))
                continue
            cases.append(tuple(estimate(s, work, phase=phase, batch=batch, seq_len=seq_len,
                                        precision=precision, network=network, predict=predict,
                                        **run)
                               for s in specs))
    return Comparison(systems=specs, estimates=tuple(cases), system_table=system_rows(specs),
                      workload_table=workload_rows(cases, specs))


def roofline_plot(comparison: Comparison, path: str | os.PathLike[str]) -> None:
    """Write a per-package roofline of every system with each estimate placed on it."""
    import matplotlib                   # deferred: matplotlib takes a second to import
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = ("tab:red", "tab:green", "tab:blue", "tab:purple")
    markers = {"decode": "o", "prefill": "s"}
    fig, ax = plt.subplots(figsize=(7.5, 5))
    xs = [2.0 ** e for e in range(-2, 15)]
    for i, system in enumerate(comparison.systems):
        chip, colour = system.chip, colours[i % len(colours)]
        bw = chip.hbm_bandwidth_bytes_per_s
        for precision in chip.precisions:
            peak = chip.peak_flops(precision)
            style = "-" if precision == "bf16" else "--"
            points = sorted(xs + [peak / bw])             # the ridge point, drawn exactly
            ax.plot(points, [min(peak, x * bw) / 1e12 for x in points], style, color=colour,
                    label=f"{system.name} roof, {precision}")
    for case in comparison.estimates:
        for e in case:
            i = comparison.names.index(e.system)
            if e.flops <= 0 or e.hbm_bytes <= 0:
                continue
            ax.plot(e.flops / e.hbm_bytes, e.flops / e.step_s / 1e12,
                    markers.get(e.phase, "^"), color=colours[i % len(colours)], markersize=7)
            ax.annotate(f"{e.workload} {e.phase}", (e.flops / e.hbm_bytes,
                                                   e.flops / e.step_s / 1e12),
                        textcoords="offset points", xytext=(5, -10), fontsize=7)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP per HBM byte)")
    ax.set_ylabel("TFLOP/s per package")
    ax.set_title("Roofline per package, estimates placed (o decode, s prefill)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
