"""System points: a supernode resized (node count, tier bandwidths, mapping) and estimated on an LLM step."""

from dataclasses import replace

from supernode.fabric.system import default_mapping, estimate, load_mapping, load_system, load_workload
from supernode.fabric.system.config import parse_quantity
from supernode.rtl.errors import UserError

OBJECTIVES = {
    "throughput": "tokens_per_s",
    "latency": "latency_s",
    "utilisation": "utilization",
}

#: A point whose weights and KV cache do not fit in HBM is estimated but infeasible.
FEASIBLE = "fits_in_hbm"

#: The estimator and its shipped data files are found through this module's imports.
SOURCES = ()

#: The estimator is built from the tile and network models, which are themselves checked
#: against the RTL by their own tests; a system point has no RTL of its own to run.
RTL_CHECKS = False

_WORKLOAD_KEYS = {"name": str, "system": str, "model": str, "phase": str, "mapping": str,
                  "batch_per_rank": int, "seq_len": int, "precision": str, "layers": int}


def _positive_int(value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError("a positive integer")
    return value


def _bandwidth(key):
    def check(value):
        if isinstance(value, str):
            try:
                value = parse_quantity(value, key, "[space]")
            except UserError:
                raise UserError('a bandwidth in bytes per second, such as 196e9 or "196 GB/s"') \
                    from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise UserError('a positive bandwidth in bytes per second, such as 196e9 or '
                            '"196 GB/s"')
        return float(value)
    return check


def _flag(value):
    if not isinstance(value, bool):
        raise UserError("true or false")
    return value


def parameters() -> dict:
    """``nodes``; ``tier1_/tier2_bandwidth_bytes_per_s`` (per package, one direction, of the
    first and second scale-up tiers); ``batch_per_rank``; ``two_batch_overlap`` (each step as
    two micro-batches, one's expert all-to-all under the other's compute; false: every op
    in series; either replaces a spatial pipeline the mapping runs)."""
    return {"nodes": _positive_int,
            "tier1_bandwidth_bytes_per_s": _bandwidth("tier1_bandwidth_bytes_per_s"),
            "tier2_bandwidth_bytes_per_s": _bandwidth("tier2_bandwidth_bytes_per_s"),
            "batch_per_rank": _positive_int, "two_batch_overlap": _flag}


def check_workload(table: dict, swept: set) -> dict:
    """``system`` (a shipped system or a path), ``model`` (an LLM workload), ``phase``,
    ``mapping`` (a mapping file whose degrees are rescaled to the point's ranks),
    ``batch_per_rank``, ``seq_len``, ``precision``, ``layers``."""
    for key, value in table.items():
        if key not in _WORKLOAD_KEYS:
            raise UserError(f"key {key!r} is unknown; expected one of {', '.join(_WORKLOAD_KEYS)}")
        if not isinstance(value, _WORKLOAD_KEYS[key]) or isinstance(value, bool):
            raise UserError(f"{key} = {value!r}; expected {_WORKLOAD_KEYS[key].__name__}")
    out = {"name": table.get("name", "llm-step"), "system": table.get("system", "cloudmatrix384"),
           "model": table.get("model", "deepseek-r1"), "phase": table.get("phase", "decode"),
           "mapping": table.get("mapping")}
    for key in ("batch_per_rank", "seq_len", "precision", "layers"):
        if key in table:
            out[key] = table[key]
    if "batch_per_rank" in swept and "batch_per_rank" in table:
        raise UserError("batch_per_rank is both swept in [space] and fixed in [workload]; "
                        "keep one")
    if out["phase"] not in ("decode", "prefill"):
        raise UserError(f"phase = {out['phase']!r}; expected decode or prefill")
    system = load_system(out["system"])
    model = load_workload(out["model"])
    if out["mapping"] is not None:
        load_mapping(out["mapping"])
    if getattr(model, "kind", None) != "llm":
        raise UserError(f"model = {out['model']!r} is not an LLM workload")
    if len(system.scale_up_tiers) < 2 and ("tier2_bandwidth_bytes_per_s" in swept):
        raise UserError(f"system {out['system']!r} has one scale-up tier, so "
                        f"tier2_bandwidth_bytes_per_s cannot be swept")
    return out


def check_rtl(table: dict) -> dict:
    if table:
        raise UserError(f"key {sorted(table)[0]!r} is unknown; system points take no RTL "
                        f"options")
    return {}


def default_plots(swept: set, objectives: set) -> list:
    plots = []
    if {"nodes", "tier2_bandwidth_bytes_per_s"} <= swept:
        plot = {"type": "heatmap", "x": "tier2_bandwidth_bytes_per_s", "y": "nodes",
                "value": "throughput"}
        if "two_batch_overlap" in swept:
            plot["facet"] = "two_batch_overlap"
        plots.append(plot)
    if {"throughput", "latency"} <= objectives:
        plots.append({"type": "pareto", "x": "latency", "y": "throughput"})
    return plots


def build(params: dict, workload: dict):
    """The resized system and rescaled mapping of a point: ``(system, model, mapping)``."""

    system = load_system(workload["system"])
    model = load_workload(workload["model"])
    nodes = params.get("nodes", system.nodes)
    chips = nodes * system.node.chips_per_node
    scale_up = system.scale_up_tiers
    bandwidth = {scale_up[0].name: params.get("tier1_bandwidth_bytes_per_s")}
    if len(scale_up) > 1:
        bandwidth[scale_up[1].name] = params.get("tier2_bandwidth_bytes_per_s")
    tiers = []
    for tier in system.tiers:
        # The innermost tier keeps its size (a node); every outer tier spans the system.
        inner = tier is scale_up[0] and len(scale_up) > 1
        changes = {"span_chips": min(tier.span_chips, chips) if inner else chips}
        if bandwidth.get(tier.name) is not None:
            changes["bandwidth_bytes_per_s"] = bandwidth[tier.name]
        tiers.append(replace(tier, **changes))
    system = replace(system, nodes=nodes, tiers=tuple(tiers))
    mapping = load_mapping(workload["mapping"]) if workload["mapping"] else \
        default_mapping(system, model, workload["phase"])
    ranks = chips * system.chip.ranks
    scale = {}
    if mapping.ranks != ranks:
        # Keep the mapping's tensor and pipeline degrees; data (and expert) parallelism
        # grow or shrink with the number of ranks.
        per_replica = mapping.tp * mapping.pp
        if ranks % per_replica:
            raise UserError(f"{ranks} ranks cannot hold whole replicas of tp {mapping.tp} "
                            f"x pp {mapping.pp}")
        dp = ranks // per_replica
        scale = {"dp": dp, "ep": min(mapping.ep * dp // mapping.dp, dp * mapping.tp)
                 if mapping.ep > 1 else 1}
        if mapping.shared_expert_ranks and scale["ep"] <= mapping.shared_expert_ranks:
            scale["shared_expert"], scale["shared_expert_ranks"] = "local", 0
    # A swept two_batch_overlap names the whole overlap scheme (Mapping.with_degrees).
    mapping = mapping.with_degrees(**scale, two_batch_overlap=params.get("two_batch_overlap"))
    return system, model, mapping


def evaluate(params: dict, workload: dict, *, rtl=None, area=False) -> dict:
    """Estimate one step of the workload on the resized system."""

    system, model, mapping = build(params, workload)
    batch = params.get("batch_per_rank", workload.get("batch_per_rank"))
    e = estimate(system, model, phase=workload["phase"], mapping=mapping,
                 batch=None if batch is None else batch * mapping.ranks,
                 seq_len=workload.get("seq_len"), precision=workload.get("precision"),
                 layers=workload.get("layers"), refuse_unfit=False)
    return {
        "chips": e.chips,
        "ranks": e.ranks,
        "batch": e.batch,
        "tokens_per_s": e.tokens_per_s,
        "tokens_per_s_per_chip": e.tokens_per_s_per_chip,
        "step_s": e.step_s,
        "latency_s": e.time_per_output_token_s if e.phase == "decode" else e.step_s,
        "utilization": e.utilization,
        "compute_s": e.compute_s,
        "memory_exposed_s": e.memory_exposed_s,
        "comm_s": e.comm_s,
        "comm_exposed_s": e.comm_exposed_s,
        "roofline_s": e.roofline_s,
        "bound": e.bound,
        "fits_in_hbm": e.fits_in_hbm,
        "mapping_dp": mapping.dp,
        "mapping_ep": mapping.ep,
    }
