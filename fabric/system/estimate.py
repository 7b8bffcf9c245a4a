"""One step of a workload on a system under a mapping: time, throughput, breakdown, bound and roofline."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from rtl.errors import UserError

from .chip import gemm_on_chip, vector_on_chip
from .comm import EXTRAPOLATION, NetworkSource, collective_time
from .hardware import SystemSpec, load_system
from .mapping import Mapping, default_mapping, load_mapping
from .workload import (Comm, Gemm, LlmModel, RunSettings, Vector, collective_program,
                       gemm_program, llm_program, load_workload)

__all__ = ["Estimate", "BlockEstimate", "estimate", "estimate_program"]

BOUNDS = ("compute", "memory", "fabric")


@dataclass(frozen=True)
class BlockEstimate:
    """One layer kind of the step (times for one instance; ``repeat`` instances per step).

    Members
    -------
    name : str
    repeat : int
    time_s : float
        Compute side plus exposed communication of one instance.
    compute_s, memory_s, onchip_s, vector_s : float
    comm_s, comm_exposed_s : float
    ops : tuple
        :class:`~fabric.system.chip.GemmEstimate` and
        :class:`~fabric.system.comm.CommEstimate` of the layer.
    """
    name: str
    repeat: int
    time_s: float
    compute_s: float
    memory_s: float
    onchip_s: float
    vector_s: float
    comm_s: float
    comm_exposed_s: float
    ops: tuple = field(repr=False)


@dataclass(frozen=True)
class Estimate:
    """The estimate of one step, with its breakdown and the roofline beside it.

    Members
    -------
    system, workload, phase, precision, mapping : str
    batch, seq_len : int
    chips : int
        Packages the step runs on.
    step_s : float
        Time of one step (decode: time per output token).
    tokens_per_s, tokens_per_s_per_chip : float
        Tokens produced per second (decode: output tokens; prefill: prompt tokens).
    compute_s : float
        Matrix time from the tile model plus vector time, summed over the step.
    memory_s, onchip_s : float
        HBM and on-chip-buffer traffic time summed over the step.
    memory_exposed_s : float
        Part of the step spent waiting on memory beyond the compute it overlaps.
    comm_s, comm_exposed_s, comm_overlapped_s : float
        Fabric time, the part on the critical path and the part hidden under compute.
    bound : str
        ``"compute"``, ``"memory"`` or ``"fabric"``: which takes most of the step.
    utilization : float
        Achieved matrix FLOP/s over the peak at the run precision, per package.
    roofline_s : float
        ``max`` of the compute, memory and fabric rooflines (below).
    roofline_compute_s, roofline_memory_s, roofline_fabric_s : float
    roofline_bound : str
    flops, hbm_bytes, fabric_bytes : float
        Per package per step (``hbm_bytes`` is the compulsory traffic).
    weight_bytes, kv_cache_bytes : float
        Resident per package.
    fits_in_hbm : bool
    blocks : tuple of BlockEstimate
    notes : tuple of str
    network_source : str
    extrapolation : str
    kind : str
        ``"llm"``, ``"gemm"`` or ``"collective"``.
    """
    system: str
    workload: str
    phase: str
    precision: str
    mapping: str
    batch: int
    seq_len: int
    chips: int
    step_s: float
    tokens_per_s: float
    tokens_per_s_per_chip: float
    compute_s: float
    memory_s: float
    onchip_s: float
    memory_exposed_s: float
    comm_s: float
    comm_exposed_s: float
    comm_overlapped_s: float
    bound: str
    utilization: float
    roofline_s: float
    roofline_compute_s: float
    roofline_memory_s: float
    roofline_fabric_s: float
    roofline_bound: str
    flops: float
    hbm_bytes: float
    fabric_bytes: float
    weight_bytes: float
    kv_cache_bytes: float
    fits_in_hbm: bool
    blocks: tuple = field(repr=False)
    notes: tuple = ()
    network_source: str = ""
    extrapolation: str = ""
    kind: str = "llm"

    @property
    def time_per_output_token_s(self) -> float:
        """Decode: one step produces one token per sequence."""
        return self.step_s

    def to_dict(self) -> dict:
        """Plain data for JSON: every figure, the per-layer breakdown and the notes."""
        out = {k: v for k, v in asdict(self).items() if k != "blocks"}
        decode = self.kind == "llm" and self.phase == "decode"
        out["time_per_output_token_s"] = self.step_s if decode else None
        out["blocks"] = [{
            "name": b.name, "repeat": b.repeat, "time_s": b.time_s, "compute_s": b.compute_s,
            "memory_s": b.memory_s, "onchip_s": b.onchip_s, "vector_s": b.vector_s,
            "comm_s": b.comm_s, "comm_exposed_s": b.comm_exposed_s,
            "ops": [_op_dict(op) for op in b.ops]} for b in self.blocks]
        out["notes"] = list(self.notes)
        return out


def _op_dict(op) -> dict:
    d = asdict(op)
    d["type"] = "comm" if "pattern" in d else "gemm"
    return d


def estimate_program(program, system: SystemSpec, *, network: NetworkSource,
                     predict=None) -> dict:
    """Time a step program on one package; the figures :class:`Estimate` is built from."""
    chip = system.chip
    blocks = []
    totals = dict(compute=0.0, memory=0.0, onchip=0.0, vector=0.0, comm=0.0, comm_exposed=0.0,
                  memory_exposed=0.0, flops=0.0, matrix_flops=0.0, hbm_bytes=0.0,
                  fabric_bytes=0.0, roof_compute=0.0, roof_memory=0.0, roof_fabric=0.0,
                  bound_compute=0.0, bound_memory=0.0, time=0.0)
    sources = set()
    for block in program.blocks:
        side = compute = memory = onchip = vector = comm = overlappable = 0.0
        mem_exposed = bound_c = bound_m = 0.0
        roof_c = roof_m = roof_f = flops = hbm = fabric = 0.0
        ops = []
        for op in block.ops:
            if isinstance(op, Gemm):
                g = gemm_on_chip(op, chip, predict=predict)
                ops.append(g)
                side += g.time_s
                compute += g.compute_s
                memory += g.hbm_s
                onchip += g.onchip_s
                mem_exposed += g.time_s - g.compute_s
                if g.bound == "compute":
                    bound_c += g.time_s
                else:
                    bound_m += g.time_s
                flops += g.flops
                hbm += g.compulsory_bytes
                roof_c += g.flops / chip.peak_flops(op.precision)
                roof_m += g.compulsory_bytes / chip.hbm_bandwidth_bytes_per_s
            elif isinstance(op, Vector):
                t = vector_on_chip(op, chip)
                side += t
                vector += t
                bound_c += t
                roof_c += t
            elif isinstance(op, Comm):
                c = collective_time(op, system, network)
                ops.append(c)
                sources.add(network(c.pattern).source)
                comm += c.time_s
                overlappable += c.time_s * op.overlap
                fabric += c.wire_bytes
                roof_f += c.roofline_s
            else:
                raise TypeError(f"unknown op {op!r} in block {block.name!r}")
        hidden = min(overlappable, side)
        exposed = comm - hidden
        time = side + exposed
        blocks.append(BlockEstimate(name=block.name, repeat=block.repeat, time_s=time,
                                    compute_s=compute + vector, memory_s=memory,
                                    onchip_s=onchip, vector_s=vector, comm_s=comm,
                                    comm_exposed_s=exposed, ops=tuple(ops)))
        r = block.repeat
        for key, value in (("compute", compute + vector), ("memory", memory),
                           ("onchip", onchip), ("vector", vector), ("comm", comm),
                           ("comm_exposed", exposed), ("memory_exposed", mem_exposed),
                           ("matrix_flops", flops), ("hbm_bytes", hbm), ("fabric_bytes", fabric),
                           ("roof_compute", roof_c), ("roof_memory", roof_m),
                           ("roof_fabric", roof_f), ("bound_compute", bound_c),
                           ("bound_memory", bound_m), ("time", time)):
            totals[key] += r * value
    # Pipeline: (microbatches + stages - 1) stage times per step (GPipe schedule).
    factor = (program.microbatches + program.pipeline_stages - 1) * 1.0
    for key in totals:
        if key not in ("matrix_flops", "hbm_bytes", "fabric_bytes"):
            totals[key] *= factor
    totals["matrix_flops"] *= program.microbatches
    totals["hbm_bytes"] *= program.microbatches
    totals["fabric_bytes"] *= program.microbatches
    return dict(totals=totals, blocks=tuple(blocks), sources=sorted(sources))


def _resolve(workload, system, mapping, phase):
    if isinstance(system, str):
        system = load_system(system)
    if isinstance(workload, str):
        workload = load_workload(workload)
    if mapping is None:
        mapping = default_mapping(system, workload, phase)
    elif isinstance(mapping, str):
        mapping = load_mapping(mapping)
    return workload, system, mapping


def estimate(system, workload, *, phase: str = "decode", batch=None, seq_len=None,
             precision=None, mapping: Mapping | str | None = None, network=None,
             predict=None, layers=None) -> Estimate:
    """Estimate one step of ``workload`` on ``system``.

    Parameters
    ----------
    system : SystemSpec or str
        A loaded system or a name / path for :func:`~fabric.system.hardware.load_system`.
    workload : LlmModel, GemmWorkload, CollectiveWorkload or str
        A loaded workload or a name / path for :func:`~fabric.system.workload.load_workload`.
    phase : str
        ``"prefill"`` or ``"decode"`` (LLMs only).
    batch, seq_len, precision :
        Override the workload's per-phase defaults (LLMs only); ``batch`` is global.
    mapping : Mapping, str or None
        Parallel layout; by default the system's shipped mapping for the workload kind.
    network : callable or None
        ``pattern -> NetworkFigures``; by default :func:`fabric.network.clos_figures` with
        the system's router parameters.
    predict : callable or None
        Tile cycle model; by default :func:`fabric.tile_model.predict`.
    layers : int or None
        Estimate only this many transformer layers (a transformer-layer workload).
    """
    workload, system, mapping = _resolve(workload, system, mapping, phase)
    net = network if isinstance(network, NetworkSource) else NetworkSource(system, network)
    kind = getattr(workload, "kind", None)
    if kind == "llm":
        if layers is not None:
            workload = _truncate(workload, layers)
        run = workload.settings(phase=phase, batch=batch, seq_len=seq_len, precision=precision,
                                chips=mapping.chips)
        program = llm_program(workload, run, mapping, system)
    elif kind == "gemm":
        if precision is not None:
            from dataclasses import replace
            workload = replace(workload, precision=precision)
        run = RunSettings(phase="prefill", batch=1, seq_len=1, precision=workload.precision)
        program = gemm_program(workload, mapping, system)
    elif kind == "collective":
        run = RunSettings(phase="prefill", batch=1, seq_len=1, precision="bf16")
        program = collective_program(workload, mapping, system)
    else:
        raise UserError(f"workload {workload!r} is not an LLM, GEMM or collective workload")
    precision = system.chip.resolve_precision(run.precision)
    result = estimate_program(program, system, network=net, predict=predict)
    t = result["totals"]
    step = t["time"]
    if step <= 0:
        raise UserError(f"workload {workload.name!r} does no work on {system.name}")
    produced = program.output_tokens if run.phase == "decode" else program.tokens
    per_chip_flops = t["matrix_flops"]
    peak = system.chip.peak_flops(precision)
    roof = {"compute": t["roof_compute"], "memory": t["roof_memory"],
            "fabric": t["roof_fabric"]}
    shares = {"compute": t["bound_compute"], "memory": t["bound_memory"],
              "fabric": t["comm_exposed"]}
    resident = program.weight_bytes + program.kv_cache_bytes
    fits = resident <= system.chip.hbm_capacity_bytes
    notes = list(program.notes)
    if not fits:
        notes.append(f"does not fit: {resident / 1e9:.1f} GB of weights and KV cache per "
                     f"package exceed {system.chip.hbm_capacity_bytes / 1e9:.0f} GB of HBM")
    return Estimate(
        system=system.name, workload=workload.name, phase=run.phase, precision=precision,
        mapping=mapping.name, batch=run.batch, seq_len=run.seq_len, chips=program.chips,
        step_s=step, tokens_per_s=produced / step,
        tokens_per_s_per_chip=produced / step / program.chips,
        compute_s=t["compute"], memory_s=t["memory"], onchip_s=t["onchip"],
        memory_exposed_s=t["memory_exposed"], comm_s=t["comm"],
        comm_exposed_s=t["comm_exposed"], comm_overlapped_s=t["comm"] - t["comm_exposed"],
        bound=max(shares, key=shares.get), utilization=per_chip_flops / step / peak,
        roofline_s=max(roof.values()), roofline_compute_s=roof["compute"],
        roofline_memory_s=roof["memory"], roofline_fabric_s=roof["fabric"],
        roofline_bound=max(roof, key=roof.get), flops=per_chip_flops, hbm_bytes=t["hbm_bytes"],
        fabric_bytes=t["fabric_bytes"], weight_bytes=program.weight_bytes,
        kv_cache_bytes=program.kv_cache_bytes, fits_in_hbm=fits, blocks=result["blocks"],
        notes=tuple(notes), network_source="; ".join(result["sources"]),
        extrapolation=EXTRAPOLATION if any(
            getattr(op, "extrapolated", False) for b in result["blocks"] for op in b.ops)
        else "", kind=kind)


def _truncate(model: LlmModel, layers: int) -> LlmModel:
    """The model cut to its first ``layers`` layers (for a transformer-layer estimate)."""
    from dataclasses import replace
    if isinstance(layers, bool) or not isinstance(layers, int) or not 1 <= layers <= model.layers:
        raise UserError(f"layers must be a whole number from 1 to {model.layers} for "
                        f"{model.name}, not {layers!r}")
    dense = min(model.dense_layers, layers)
    return replace(model, layers=layers, dense_layers=dense,
                   name=f"{model.name}[{layers} layer{'s' if layers > 1 else ''}]")
