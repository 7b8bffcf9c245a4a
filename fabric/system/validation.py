"""Published measurements beside the estimator's figures: the validation table."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from supernode.rtl.errors import UserError

from .chip import gemm_on_chip
from .comm import NetworkSource, moe_time
from .config import CONFIG_DIR, Table, read_toml
from .estimate import estimate
from .hardware import PRECISION_BYTES, load_system
from .mapping import GROUPS, Mapping
from .moe import distinct_nodes, expert_load, step_spread
from .program import ACT_BYTES, Comm, Gemm
from .slo import slo_search
from .workload import load_workload

__all__ = ["Point", "Row", "load_points", "validate", "format_table", "to_csv", "to_markdown",
           "ROLES",
           "KINDS", "TOLERANCE"]

#: What a point does for the model: it set a parameter (``set``), it is only compared
#: (``check``), or it is kept aside to judge the whole method (``blind``: no parameter may be
#: set from it, not even indirectly).
ROLES = ("set", "check", "blind")
#: ``serving``: an end-to-end throughput; ``serving_ratio``: the throughput of one
#: deployment over that of a ``baseline`` one differing in a few settings (an ablation);
#: ``dispatch`` / ``combine``: one expert all-to-all kernel's latency; ``all_to_all_bandwidth``: a bulk expert all-to-all's bottleneck
#: bandwidth; ``gemm``: a GEMM kernel's throughput; ``attention``: the attention kernel's
#: compute or memory utilisation; ``expert_load``: the busiest rank's (or expert copy's)
#: routed tokens over the mean in one step, or their standard deviation over the mean.
KINDS = ("serving", "serving_ratio", "dispatch", "combine", "all_to_all_bandwidth", "gemm",
         "attention", "expert_load")
#: What an ``expert_load`` point measures: the busiest rank's or expert copy's (slot's) load
#: over the mean, or the standard deviation of the ranks' or copies' loads over the mean.
LOAD_STATISTICS = ("rank", "slot", "rank-spread", "slot-spread")
#: Every point is held within this ratio of its measured value by the tests.
TOLERANCE = 0.25
#: ``batch_per_rank = "fill"``: the largest batch whose weights and KV cache fit, searched
#: as an SLO too loose to bind.
FILL_LIMIT_MS = 1e6

_FILE = CONFIG_DIR / "validation" / "points.toml"


@dataclass(frozen=True)
class Point:
    """One published measurement and the setup it was taken in.

    Members
    -------
    id, kind, role, system, model, source, quote : str
    measured : float
    unit : str
    setup : dict
        Kind-specific: phase, batch, lengths, precisions and deployment for ``serving``;
        group and tokens for the all-to-all kernels; shape and precision for ``gemm``.
    sets : str
        For ``role = "set"``: the parameter(s) the point set.
    """
    id: str
    kind: str
    role: str
    system: str
    model: str
    measured: float
    unit: str
    source: str
    quote: str
    setup: dict
    sets: str = ""


@dataclass(frozen=True)
class Row:
    """A point with the estimator's figure beside it."""
    point: Point
    estimate: float
    detail: str

    @property
    def ratio(self) -> float:
        return self.estimate / self.point.measured

    @property
    def within(self) -> bool:
        return abs(self.ratio - 1.0) <= TOLERANCE

    def to_dict(self) -> dict:
        p = self.point
        return {"id": p.id, "kind": p.kind, "role": p.role, "system": p.system,
                "model": p.model, "setup": describe(p), "source": p.source,
                "quote": p.quote, "measured": p.measured, "unit": p.unit,
                "estimate": self.estimate, "ratio": self.ratio, "within": self.within,
                "sets": p.sets, "detail": self.detail}


_SETUP_KEYS = {
    "serving": ("phase", "batch_per_rank", "seq_len", "precision", "expert_precision",
                "attention_precision", "kv_precision", "cache_hit_rate", "tpot_slo_ms",
                "ttft_slo_ms", "deployment", "metric"),
    "serving_ratio": ("phase", "batch_per_rank", "seq_len", "precision", "expert_precision",
                      "attention_precision", "kv_precision", "cache_hit_rate", "deployment",
                      "baseline"),
    "dispatch": ("ep", "tokens_per_rank", "precision"),
    "combine": ("ep", "tokens_per_rank", "precision"),
    "all_to_all_bandwidth": ("op", "ep", "tokens_per_rank", "precision"),
    "gemm": ("m", "k", "n", "precision", "groups"),
    "attention": ("bound",),
}   # expert_load: read and checked by _load_setup


def load_points(path: Path | str | None = None) -> tuple:
    """Read the published points (the shipped file unless ``path`` is given)."""
    path = Path(path) if path is not None else _FILE
    top = Table(read_toml(path), path=path, section="")
    raw = top.data.get("point")
    top.mark_used("point")
    top.finish()
    if not isinstance(raw, list) or not raw:
        raise UserError(f"{path}: needs [[point]] tables")
    points, seen = [], set()
    for i, entry in enumerate(raw):
        t = Table(entry, path=path, section=f"point {i}")
        pid = t.text("id")
        if pid in seen:
            raise UserError(f"{t.where}: id {pid!r} is used twice")
        seen.add(pid)
        kind = t.text("kind", choices=KINDS)
        role = t.text("role", choices=ROLES)
        if kind == "expert_load":
            setup = _load_setup(t)
        else:
            setup = {}
            for key in _SETUP_KEYS[kind]:
                if t.has(key):
                    setup[key] = t.data[key]
                    t.mark_used(key)
        point = Point(id=pid, kind=kind, role=role, system=t.text("system"),
                      model=t.text("model", required=False, default=""),
                      measured=t.number("measured", sourced=False),
                      unit=t.text("unit"), source=t.text("source"), quote=t.text("quote"),
                      setup=setup, sets=t.text("sets", required=False, default=""))
        if role == "set" and not point.sets:
            raise UserError(f"{t.where}: a point with role = \"set\" names the parameter it "
                            f"set in sets = \"...\"")
        t.finish()
        points.append(point)
    return tuple(points)


def _load_setup(t: Table) -> dict:
    """An ``expert_load`` point's setup, read and checked with the table's own readers."""
    setup = {key: t.number(key, sourced=False, integer=True)
             for key in ("ep", "slots_per_rank", "sequences_per_step")}
    setup["statistic"] = t.text("statistic", choices=LOAD_STATISTICS)
    if t.has("expert_balancer"):
        balancer = t.data["expert_balancer"]
        t.mark_used("expert_balancer")
        if not isinstance(balancer, bool):
            raise UserError(f"{t.where}: expert_balancer = {balancer!r} must be true or false")
        setup["expert_balancer"] = balancer
    return setup


def describe(p: Point) -> str:
    """The setup of a point in a few words."""
    s = p.setup
    if p.kind in ("serving", "serving_ratio"):
        dep = s.get("deployment", {})
        ranks = dep.get("tp", 1) * dep.get("dp", 1) * dep.get("pp", 1)
        words = [s.get("phase", ""), f"{ranks} ranks EP{dep.get('ep', 1)}"]
        if "tpot_slo_ms" in s:
            words.append(f"TPOT <= {s['tpot_slo_ms']} ms")
        elif s.get("batch_per_rank") == "fill":
            words.append("batch filling HBM")
        elif "batch_per_rank" in s:
            words.append(f"batch {s['batch_per_rank']}/rank")
        words.append(f"len {s.get('seq_len')}")
        precisions = [s.get("precision", "")]
        if s.get("expert_precision"):
            precisions.append(f"experts {s['expert_precision']}")
        precisions.append(f"attn {s.get('attention_precision', 'bf16')}")
        words.append(" ".join(precisions))
        if dep.get("mtp_tokens"):
            words.append(f"MTP {dep['mtp_tokens']}")
        if dep.get("two_batch_overlap"):
            words.append("TBO")
        if dep.get("pipeline") == "spatial":
            words.append(f"spatial pipeline (attention on {dep.get('attention_cube_cores')} "
                         f"cube + {dep.get('attention_vector_cores')} vector cores)")
        if dep.get("perfect_balance"):
            words.append("perfect balance")
        if s.get("cache_hit_rate"):
            words.append(f"cache hits {s['cache_hit_rate']:.0%}")
        if p.kind == "serving_ratio":
            words.append("over " + ", ".join(f"{k} = {v}" for k, v in
                                             s.get("baseline", {}).items()))
        return ", ".join(w for w in words if w)
    if p.kind in ("dispatch", "combine"):
        width = s.get("precision", "bf16") if p.kind == "dispatch" else "bf16"
        return f"EP{s['ep']}, {s['tokens_per_rank']} tokens/rank, {width}"
    if p.kind == "all_to_all_bandwidth":
        return f"{s['op']} EP{s['ep']}, {s['tokens_per_rank']} tokens/rank"
    if p.kind == "gemm":
        groups = f" x {s['groups']} groups" if s.get("groups") else ""
        return f"{s['m']}x{s['k']}x{s['n']}{groups} {s.get('precision', '')}"
    if p.kind == "expert_load":
        placement = "placed by load" if s.get("expert_balancer") else "placed in index order"
        stat = s["statistic"]
        measure = (f"spread by {stat.removesuffix('-spread')}" if stat.endswith("-spread")
                   else f"busiest {stat}")
        return (f"EP{s['ep']}, {s['slots_per_rank']} expert slots/rank, {placement}, "
                f"{s['sequences_per_step']} sequences/step, {measure}")
    return f"{s['bound']}-bound"


def _mapping(p: Point, overrides=None) -> Mapping:
    dep = dict(p.setup.get("deployment", {}))
    dep.update(overrides or {})
    unknown = set(dep) - set(GROUPS) - {"microbatches", "two_batch_overlap",
                                        "redundant_experts", "expert_balancer",
                                        "perfect_balance",
                                        "shared_expert", "shared_expert_ranks", "mtp_tokens",
                                        "mtp_acceptance", "tiers", "pipeline",
                                        "attention_cube_cores", "attention_vector_cores",
                                        "hbm_sharing"}
    if unknown:
        raise UserError(f"point {p.id!r}: unknown deployment key {sorted(unknown)[0]!r}")
    tiers = dep.pop("tiers", {})
    return Mapping(name=p.id, tiers=MappingProxyType(tiers), **dep)


def _serving(p: Point, system, cache) -> tuple:
    s = p.setup
    model = cache.setdefault(("model", p.model), load_workload(p.model))
    mapping = _mapping(p)
    run = {k: s[k] for k in ("expert_precision", "attention_precision", "kv_precision",
                             "cache_hit_rate") if k in s}
    phase = s["phase"]
    net = cache.setdefault(("net", p.system), NetworkSource(system))
    if "tpot_slo_ms" in s or "ttft_slo_ms" in s or s.get("batch_per_rank") == "fill":
        # A latency limit, or a decode run with as many sequences as the HBM holds.
        limit = (s.get("tpot_slo_ms") or s.get("ttft_slo_ms") or FILL_LIMIT_MS) * 1e-3
        try:
            r = slo_search(system, model, phase=phase, limit_s=limit, mapping=mapping,
                           seq_len=s["seq_len"], precision=s.get("precision"), network=net,
                           max_batch_per_rank=4096, **run)
        except UserError as exc:
            # The model cannot serve at this limit at all: a throughput of zero, said why.
            return 0.0, str(exc)
        e = r.best
    else:
        e = estimate(system, model, phase=phase, mapping=mapping, network=net,
                     batch=int(s["batch_per_rank"] * mapping.ranks), seq_len=s["seq_len"],
                     precision=s.get("precision"), **run)
    metric = s.get("metric", "tokens_per_s_per_chip")
    value = e.tokens_per_s_per_chip if metric == "tokens_per_s_per_chip" else getattr(e, metric)
    detail = (f"batch {e.batch // e.ranks}/rank, step {e.step_s * 1e3:.1f} ms"
              + (f", TPOT {e.time_per_output_token_s * 1e3:.1f} ms" if phase == "decode"
                 else ""))
    return value, detail


def _serving_ratio(p: Point, system, cache) -> tuple:
    s = p.setup
    model = cache.setdefault(("model", p.model), load_workload(p.model))
    net = cache.setdefault(("net", p.system), NetworkSource(system))
    run = {k: s[k] for k in ("expert_precision", "attention_precision", "kv_precision",
                             "cache_hit_rate") if k in s}
    figures = []
    for overrides in (None, s.get("baseline", {})):
        mapping = _mapping(p, overrides)
        e = estimate(system, model, phase=s["phase"], mapping=mapping, network=net,
                     batch=int(s["batch_per_rank"] * mapping.ranks), seq_len=s["seq_len"],
                     precision=s.get("precision"), **run)
        figures.append(e.tokens_per_s_per_chip)
    return figures[0] / figures[1], (f"{figures[0]:,.0f} against {figures[1]:,.0f} tokens/s "
                                     f"per package")


def _all_to_all(p: Point, system, cache, kind) -> tuple:
    s = p.setup
    model = cache.setdefault(("model", p.model), load_workload(p.model))
    ranks = system.per_rank()
    ep = int(s["ep"])
    tokens = float(s["tokens_per_rank"])
    k = model.active_experts
    h = model.hidden_size
    width = PRECISION_BYTES[s.get("precision", "bf16")] if kind == "dispatch" else ACT_BYTES
    tier = ranks.smallest_tier(ep)
    remote = 0.0
    if p.kind == "all_to_all_bandwidth":
        # Bulk (normal-mode) kernels deduplicate tokens per remote node.
        node = ranks.scale_up_tiers[0]
        if tier.plane == "rdma" and node.span_chips < ep:
            nodes = -(-ep // node.span_chips)
            limit = model.max_nodes_per_token or nodes
            remote = distinct_nodes(k, nodes, max(1, model.routed_experts // nodes), limit) \
                * (nodes - 1) / nodes
    comm = Comm(p.id, kind, tokens * k * h * width, ep, tier.name, copies=k,
                remote_nodes=remote, low_latency=p.kind != "all_to_all_bandwidth")
    net = cache.setdefault(("net", p.system), NetworkSource(system))
    c = moe_time(comm, ranks, net)
    if p.kind == "all_to_all_bandwidth":
        # Bottleneck bandwidth: the busiest plane's bytes over the kernel's time.
        return c.transfer_s * c.effective_bandwidth_bytes_per_s / c.time_s / 1e9, \
            f"{c.time_s * 1e6:.0f} us on {c.tier}"
    return c.time_s * 1e6, f"{c.latency_s * 1e6:.0f} us fixed + {c.transfer_s * 1e6:.0f} us transfer"


def _gemm(p: Point, system) -> tuple:
    s = p.setup
    chip = system.per_rank().chip
    g = Gemm(p.id, m=int(s["m"]), k=int(s["k"]), n=int(s["n"]), batch=float(s.get("groups", 1)),
             precision=s.get("precision", "bf16"),
             a_bytes=PRECISION_BYTES[s.get("precision", "bf16")],
             b_bytes=PRECISION_BYTES[s.get("precision", "bf16")], c_bytes=ACT_BYTES)
    e = gemm_on_chip(g, chip)
    return g.flops / e.time_s / 1e12, f"{e.bound}-bound, {e.time_s * 1e6:.0f} us"


def _attention(p: Point, system) -> tuple:
    k = system.chip.kernels
    value = (k.attention_compute_efficiency if p.setup["bound"] == "compute"
             else k.attention_memory_efficiency)
    return value * 100.0, "the kernel's published rate is the parameter"


def _expert_load(p: Point, cache) -> tuple:
    """The busiest rank's (``statistic = "rank"``) or expert copy's (``"slot"``) load over
    the mean, or the spread of their loads (``"rank-spread"``, ``"slot-spread"``), from the
    workload's routing spreads, as the estimator computes it."""
    s = p.setup
    model = cache.setdefault(("model", p.model), load_workload(p.model))
    slots = s["ep"] * s["slots_per_rank"]
    if slots < model.routed_experts:
        raise UserError(f"point {p.id!r}: {s['ep']} ranks of {s['slots_per_rank']} slots hold "
                        f"{slots} experts; accepted: at least the model's "
                        f"{model.routed_experts}")
    holders = s["ep"] if s["statistic"].startswith("rank") else slots
    # A decode step: one token per sequence, each routed to the model's active experts.
    pairs = s["sequences_per_step"] * model.active_experts
    load = expert_load(experts=model.routed_experts, ranks=holders,
                       redundant=slots - model.routed_experts,
                       balancer=bool(s.get("expert_balancer", False)),
                       cv=model.expert_load_cv,
                       step_cv=step_spread(model.sequence_load_cv, s["sequences_per_step"]),
                       tokens_per_rank=pairs / holders)
    if s["statistic"].endswith("-spread"):
        return load.spread, f"busiest {load.imbalance:.2f} x the mean"
    return load.imbalance, f"placement alone {load.placement_imbalance:.2f}"


def validate(points: Iterable[Point] | None = None, *,
             progress: Callable[[Row], object] | None = None) -> tuple[Row, ...]:
    """Estimate every point; ``progress`` is called with each finished row."""
    points = load_points() if points is None else points
    cache, rows = {}, []
    for p in points:
        system = cache.setdefault(("system", p.system), load_system(p.system))
        if p.kind == "serving":
            value, detail = _serving(p, system, cache)
        elif p.kind == "serving_ratio":
            value, detail = _serving_ratio(p, system, cache)
        elif p.kind in ("dispatch", "combine"):
            value, detail = _all_to_all(p, system, cache, p.kind)
        elif p.kind == "all_to_all_bandwidth":
            value, detail = _all_to_all(p, system, cache, p.setup["op"])
        elif p.kind == "gemm":
            value, detail = _gemm(p, system)
        elif p.kind == "expert_load":
            value, detail = _expert_load(p, cache)
        else:
            value, detail = _attention(p, system)
        row = Row(point=p, estimate=float(value), detail=detail)
        rows.append(row)
        if progress is not None:
            progress(row)
    return tuple(rows)


def format_table(rows: Sequence[Row]) -> str:
    """The validation table as text, one line per point, sources listed below."""
    header = ["id", "kind", "role", "system", "setup", "measured", "estimate", "ratio"]
    body = []
    for r in rows:
        p = r.point
        body.append([p.id, p.kind, p.role, p.system, describe(p), f"{p.measured:,.4g} {p.unit}",
                     f"{r.estimate:,.4g}", f"{r.ratio:.2f}" + ("" if r.within else " !")])
    widths = [max(len(str(x[i])) for x in [header] + body) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    for b in body:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(b, widths)).rstrip())
    outside = [r for r in rows if not r.within]
    lines += ["", f"{len(rows) - len(outside)} of {len(rows)} points within +-"
              f"{TOLERANCE:.0%} of the measurement"
              + (f"; outside: {', '.join(r.point.id for r in outside)}" if outside else "."),
              "", "Sources (set: the point set the parameter named; blind: no parameter was "
              "set from it):"]
    for r in rows:
        p = r.point
        extra = f" [sets {p.sets}]" if p.sets else ""
        lines.append(f"  {p.id}: {p.source}{extra}")
    return "\n".join(lines)


def to_markdown(rows: Iterable[Row]) -> str:
    """The validation table as Markdown, for reports and docs."""
    lines = ["| point | role | system | setup | measured | estimate | ratio |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        p = r.point
        mark = "" if r.within else " (outside)"
        lines.append(f"| `{p.id}` | {p.role} | {p.system} | {describe(p)} | "
                     f"{p.measured:,.4g} {p.unit} | {r.estimate:,.4g} | {r.ratio:.2f}{mark} |")
    return "\n".join(lines) + "\n"


def to_csv(rows: Iterable[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    keys = ["id", "kind", "role", "system", "model", "setup", "measured", "unit", "estimate",
            "ratio", "within", "sets", "source", "quote", "detail"]
    writer.writerow(keys)
    for r in rows:
        d = r.to_dict()
        writer.writerow([d[k] for k in keys])
    return out.getvalue()
