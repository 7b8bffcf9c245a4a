"""One step of a workload on a system under a mapping: time, throughput, breakdown, bound and roofline."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from supernode.rtl.errors import UserError

from .chip import TilePredict, gemm_on_chip, vector_on_chip
from .comm import EXTRAPOLATION, FigureSource, NetworkSource, collective_time
from .hardware import SystemSpec, load_system
from .lowering import collective_program, gemm_program, llm_program
from .mapping import Mapping, default_mapping, load_mapping
from .program import Comm, Gemm, Parallel, Program, Vector
from .workload import LlmModel, RunSettings, Workload, load_workload

__all__ = ["Estimate", "BlockEstimate", "estimate", "estimate_program", "schedule", "resolve"]


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
        :class:`~supernode.fabric.system.chip.GemmEstimate` and
        :class:`~supernode.fabric.system.comm.CommEstimate` of the layer.
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
    chips : float
        Packages the step runs on (the instance).
    ranks : int
        Ranks the step runs on (a 910C package is two).
    step_s : float
        Time of one step.
    tokens_per_s, tokens_per_s_per_chip : float
        Tokens produced per second, over the instance and per package (decode: output
        tokens; prefill: prompt tokens).
    compute_s : float
        Matrix time from the tile model plus vector time, summed over the step.
    memory_s, onchip_s : float
        HBM and on-chip-buffer traffic time summed over the step.
    memory_exposed_s : float
        Part of the step spent waiting on memory beyond the compute it overlaps.
    comm_s, comm_exposed_s, comm_overlapped_s : float
        Fabric time, the part on the critical path and the part hidden under the other
        micro-batch's compute (two-batch overlap; zero without it).
    overhead_s : float
        Kernel launches and the step's fixed cost, included in ``step_s``.
    kernels : int
        Kernels launched per step.
    bound : str
        ``"compute"``, ``"memory"`` or ``"fabric"``: which takes most of the step.
    utilization : float
        Achieved matrix FLOP/s over the peak at the run precision, per package.
    roofline_s : float
        ``max`` of the compute, memory and fabric rooflines (below).
    roofline_compute_s, roofline_memory_s, roofline_fabric_s : float
    roofline_bound : str
    flops, hbm_bytes, fabric_bytes : float
        Per package per step for an LLM (per rank used for a GEMM or collective);
        ``hbm_bytes`` is the compulsory traffic.
    weight_bytes, kv_cache_bytes : float
        Resident per package (LLM) or per rank used.
    fits_in_hbm : bool
    blocks : tuple of BlockEstimate
    notes : tuple of str
    network_source : str
    extrapolation : str
    kind : str
        ``"llm"``, ``"gemm"`` or ``"collective"``.
    tokens_per_sequence : float
        Tokens a decoding sequence gains per step (more than 1 with multi-token
        prediction).
    two_batch_overlap : bool
    pipeline : str
        ``"spatial"`` when the step ran as a spatial pipeline (attention and MoE streams
        on disjoint cores of each rank), else ``"none"``.
    """
    system: str
    workload: str
    phase: str
    precision: str
    mapping: str
    batch: int
    seq_len: int
    chips: float
    ranks: int
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
    overhead_s: float
    kernels: int
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
    tokens_per_sequence: float = 1.0
    two_batch_overlap: bool = False
    pipeline: str = "none"

    @property
    def time_per_output_token_s(self) -> float:
        """Decode: the step time over the tokens each sequence gains in it."""
        return self.step_s / self.tokens_per_sequence

    def to_dict(self) -> dict:
        """Plain data for JSON: every figure, the per-layer breakdown and the notes."""
        out = {k: v for k, v in asdict(self).items() if k != "blocks"}
        decode = self.kind == "llm" and self.phase == "decode"
        out["time_per_output_token_s"] = self.time_per_output_token_s if decode else None
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


def _time_ops(ops, chip, system, network, predict, acc, sources, roof=None):
    """Time compute ops one after another on ``chip``; fill ``acc`` with their figures.

    ``roof`` is the chip the rooflines are taken against when ``chip`` is a share of it
    (a stream of a spatial pipeline); by default ``chip`` itself.
    """
    roof = chip if roof is None else roof
    total = 0.0
    launch = chip.kernels.kernel_launch_ns * 1e-9
    for op in ops:
        if isinstance(op, Gemm):
            g = gemm_on_chip(op, chip, predict=predict)
            acc["ops"].append(g)
            total += g.time_s + launch
            acc["compute"] += g.compute_s
            acc["memory"] += g.hbm_s
            acc["onchip"] += g.onchip_s
            acc["memory_exposed"] += g.time_s - g.compute_s
            acc["bound_" + ("compute" if g.bound == "compute" else "memory")] += g.time_s
            acc["matrix_flops"] += g.flops
            acc["hbm_bytes"] += g.compulsory_bytes
            acc["roof_compute"] += g.flops / roof.peak_flops(op.precision)
            acc["roof_memory"] += g.compulsory_bytes / roof.hbm_bandwidth_bytes_per_s
            acc["overhead"] += launch
            acc["kernels"] += 1
        elif isinstance(op, Vector):
            t = vector_on_chip(op, chip)
            total += t + launch
            acc["vector"] += t
            acc["compute"] += t
            acc["bound_compute"] += t
            acc["roof_compute"] += t if roof is chip else vector_on_chip(op, roof)
            acc["overhead"] += launch
            acc["kernels"] += 1
        elif isinstance(op, Parallel):
            # Different ranks run the branches at once: the slowest sets the time and
            # is the one this rank's figures follow.
            best = None
            for branch in op.branches:
                sub = _accumulator()
                t = _time_ops(branch, chip, system, network, predict, sub, sources, roof)
                if best is None or t > best[0]:
                    best = (t, sub)
            total += best[0]
            for key, value in best[1].items():
                acc[key] = acc[key] + value
        else:
            raise TypeError(f"unknown op {op!r}")
    return total


def _accumulator():
    acc = {key: 0.0 for key in _TOTALS}
    acc["ops"] = []
    return acc


_TOTALS = ("compute", "memory", "onchip", "vector", "comm", "memory_exposed", "matrix_flops",
           "hbm_bytes", "fabric_bytes", "roof_compute", "roof_memory", "roof_fabric",
           "bound_compute", "bound_memory", "overhead", "kernels")


def _segments(block, chip, system, network, predict, sources):
    """A block's ops as alternating compute and fabric segments, timed, with figures."""
    acc = _accumulator()
    segments, pending = [], []
    launch = chip.kernels.kernel_launch_ns * 1e-9

    def flush():
        if pending:
            segments.append(("compute", _time_ops(pending, chip, system, network, predict,
                                                  acc, sources)))
            pending.clear()

    for op in block.ops:
        if isinstance(op, Comm):
            flush()
            segments.append(("fabric", _comm(op, system, network, acc, sources, launch)))
        else:
            pending.append(op)
    flush()
    return segments, acc


def _comm(op, system, network, acc, sources, launch):
    """Time a collective and fill ``acc`` with its figures; its seconds with the launch."""
    c = collective_time(op, system, network)
    acc["ops"].append(c)
    sources.add(network(c.pattern).source)
    acc["comm"] += c.time_s + launch
    acc["fabric_bytes"] += c.wire_bytes
    acc["roof_fabric"] += c.roofline_s
    acc["overhead"] += launch
    acc["kernels"] += 1
    return c.time_s + launch


def _stream_segments(block, chips, rank_chip, system, network, predict, sources):
    """A block's ops as segments of a spatial pipeline's streams, timed, with figures.

    Each op runs on its stream's share of the rank (``chips[op.stream]``); consecutive ops
    of one stream make one segment, collectives in series with that stream's compute
    (the MoE stream's own vector cores drive dispatch and combine). A segment is
    ``(stream, seconds, work)``, ``work`` its compute seconds, collectives aside.
    """
    acc = _accumulator()
    segments = []
    launch = rank_chip.kernels.kernel_launch_ns * 1e-9
    for op in block.ops:
        stream = op.stream
        if stream not in chips:
            raise ValueError(f"op {op.name!r} has stream {stream!r}, not one of "
                             f"{', '.join(chips)}")
        if isinstance(op, Comm):
            seconds, work = _comm(op, system, network, acc, sources, launch), 0.0
        else:
            seconds = _time_ops([op], chips[stream], system, network, predict, acc, sources,
                                roof=rank_chip)
            work = seconds
        if segments and segments[-1][0] == stream:
            _, before, done = segments[-1]
            segments[-1] = (stream, before + seconds, done + work)
        else:
            segments.append((stream, seconds, work))
    return segments, acc


def _work(segments) -> dict:
    """Each stream's compute seconds in ``segments``: a segment's third item, or all of
    its seconds when it has none, except on the ``"fabric"`` stream, which does none."""
    work = {}
    for segment in segments:
        stream, seconds = segment[0], segment[1]
        done = segment[2] if len(segment) > 2 else (0.0 if stream == "fabric" else seconds)
        work[stream] = work.get(stream, 0.0) + done
    return work


def schedule(blocks: list[tuple[list[tuple[str, float] | tuple[str, float, float]], int]],
             halves: int) -> tuple[float, list[float], float]:
    """Run ``halves`` micro-batches through ``blocks`` on named streams.

    ``blocks`` is a list of ``(segments, repeat)``; each segment is ``(stream, seconds)``
    or ``(stream, seconds, work)``, ``work`` the compute seconds among ``seconds`` (by
    default all of them, none on the ``"fabric"`` stream); the stream a name:
    ``"compute"`` and ``"fabric"`` for two-batch overlap (one
    micro-batch's dispatch and combine while the other computes), ``"attention"`` and
    ``"moe"`` for a spatial pipeline (one micro-batch's attention while the other's MoE
    layer runs). Each stream takes its segments in order (layer, segment, micro-batch),
    and a micro-batch's segment starts when its previous one has ended and its stream is
    free; nothing else overlaps. Returns the end time, each block's end time and the
    busiest stream's compute time (with two-batch overlap: the compute stream's).
    """
    free = {}
    ready = [0.0] * halves
    ends, busy = [], {}
    for segments, repeat in blocks:
        for _ in range(repeat):
            for segment in segments:
                stream, seconds = segment[0], segment[1]
                for h in range(halves):
                    end = max(free.get(stream, 0.0), ready[h]) + seconds
                    free[stream] = ready[h] = end
        for stream, work in _work(segments).items():
            busy[stream] = busy.get(stream, 0.0) + work * repeat * halves
        ends.append(max(ready))
    return max(ready, default=0.0), ends, max(busy.values(), default=0.0)


def estimate_program(program: Program, system: SystemSpec, *, network: NetworkSource,
                     predict: TilePredict | None = None) -> dict:
    """Time a step program on one rank; the figures :class:`Estimate` is built from.

    ``system`` is seen per rank. Each block is cut into compute and fabric segments, or
    with a spatial pipeline into segments of its streams, each op on its stream's share
    of the rank (:meth:`~supernode.fabric.system.hardware.ChipSpec.share`), and scheduled
    (:func:`schedule`) for the program's overlapped micro-batches; kernel launches and the
    step's fixed cost are added, and pipeline stages follow GPipe.
    """
    chip = system.chip
    halves = program.overlap_microbatches
    sources = set()
    timed, figures = [], []
    streams = {name: chip.share(cube, vector, memory)
               for name, cube, vector, memory in program.stream_cores}
    # Bulk all-to-all kernels take a share of the compute cores; with two micro-batches
    # one of them is always running beside the other's compute. A spatial pipeline runs
    # them on the MoE stream's own cores instead.
    slowdown = 1.0
    if program.bulk_comm and halves > 1 and not streams:
        slowdown = 1.0 / (1.0 - system.bulk_core_share)
    for block in program.blocks:
        if streams:
            segments, acc = _stream_segments(block, streams, chip, system, network,
                                             predict, sources)
        else:
            segments, acc = _segments(block, chip, system, network, predict, sources)
        if slowdown != 1.0 and any(stream == "fabric" for stream, _ in segments):
            segments = [(stream, sec * slowdown if stream == "compute" else sec)
                        for stream, sec in segments]
        timed.append((segments, block.repeat))
        figures.append(acc)
    # Communication is exposed where the step outlasts the busiest stream's compute.
    end, ends, busy = schedule(timed, halves)
    overhead_step = chip.kernels.step_overhead_ns * 1e-9
    totals = {key: 0.0 for key in _TOTALS}
    blocks, previous = [], 0.0
    for block, acc, block_end, (segments, _) in zip(program.blocks, figures, ends, timed):
        r, n = block.repeat, halves
        instance = (block_end - previous) / r
        previous = block_end
        comm = acc["comm"] * n
        compute_side = max(_work(segments).values(), default=0.0)
        exposed = max(0.0, min(comm, instance - compute_side * n))
        blocks.append(BlockEstimate(name=block.name, repeat=r, time_s=instance,
                                    compute_s=acc["compute"] * n, memory_s=acc["memory"] * n,
                                    onchip_s=acc["onchip"] * n, vector_s=acc["vector"] * n,
                                    comm_s=comm, comm_exposed_s=exposed, ops=tuple(acc["ops"])))
        for key in _TOTALS:
            totals[key] += acc[key] * n * r
    blocks.append(BlockEstimate(name="step overhead", repeat=1, time_s=overhead_step,
                                compute_s=0.0, memory_s=0.0, onchip_s=0.0, vector_s=0.0,
                                comm_s=0.0, comm_exposed_s=0.0, ops=()))
    totals["time"] = end + overhead_step
    totals["overhead"] += overhead_step
    totals["comm_exposed"] = max(0.0, min(totals["comm"], end - busy))
    # Pipeline: (microbatches + stages - 1) stage times per step (GPipe schedule).
    factor = (program.microbatches + program.pipeline_stages - 1) * 1.0
    for key in totals:
        if key not in ("matrix_flops", "hbm_bytes", "fabric_bytes", "kernels"):
            totals[key] *= factor
    for key in ("matrix_flops", "hbm_bytes", "fabric_bytes", "kernels"):
        totals[key] *= program.microbatches
    return dict(totals=totals, blocks=tuple(blocks), sources=sorted(sources))


def resolve(workload: Workload | str, system: SystemSpec | str,
            mapping: Mapping | str | None,
            phase: str | None) -> tuple[Workload, SystemSpec, Mapping]:
    """Load whatever is given by name: ``(workload, system, mapping)``."""
    if isinstance(system, str):
        system = load_system(system)
    if isinstance(workload, str):
        workload = load_workload(workload)
    if mapping is None:
        mapping = default_mapping(system, workload, phase)
    elif isinstance(mapping, str):
        mapping = load_mapping(mapping)
    return workload, system, mapping


def estimate(system: SystemSpec | str, workload: Workload | str, *, phase: str = "decode",
             batch: int | None = None, seq_len: int | None = None,
             precision: str | None = None, mapping: Mapping | str | None = None,
             network: FigureSource | None = None, predict: TilePredict | None = None,
             layers: int | None = None, refuse_unfit: bool = True,
             **run: object) -> Estimate:
    """Estimate one step of ``workload`` on ``system``.

    Parameters
    ----------
    system : SystemSpec or str
        A loaded system or a name / path for :func:`~supernode.fabric.system.hardware.load_system`.
    workload : LlmModel, GemmWorkload, CollectiveWorkload or str
        A loaded workload or a name / path for :func:`~supernode.fabric.system.workload.load_workload`.
    phase : str
        ``"prefill"`` or ``"decode"`` (LLMs only).
    batch, seq_len, precision :
        Override the workload's per-phase defaults (LLMs only); ``batch`` is global
        over the instance.
    mapping : Mapping, str or None
        Deployment (parallel degrees in ranks, micro-batching, expert placement); by
        default the system's shipped mapping for the workload and phase.
    network : callable or None
        ``pattern -> NetworkFigures``; by default :func:`supernode.fabric.network.clos_figures` with
        the system's router parameters.
    predict : callable or None
        Tile cycle model; by default :func:`supernode.fabric.tile_model.predict`.
    layers : int or None
        Estimate only this many transformer layers (a transformer-layer workload).
    refuse_unfit : bool
        Raise :class:`UserError` when weights and KV cache do not fit the HBM left after
        the reserve (the default); otherwise estimate and say so in the notes.
    **run :
        Further run settings: ``expert_precision``, ``attention_precision``,
        ``kv_precision``, ``cache_hit_rate``.
    """
    workload, system, mapping = resolve(workload, system, mapping, phase)
    rank_system = system.per_rank()
    net = network if isinstance(network, NetworkSource) else NetworkSource(system, network)
    kind = getattr(workload, "kind", None)
    per_package = system.chip.ranks
    if kind == "llm":
        if layers is not None:
            workload = _truncate(workload, layers)
        if mapping.ranks > rank_system.chips:
            raise UserError(
                f"mapping uses tp x pp x dp = {mapping.tp} x {mapping.pp} x {mapping.dp} = "
                f"{mapping.ranks} ranks ({mapping.ranks / per_package:g} packages) but "
                f"{system.name} has {rank_system.chips} ranks ({system.chips} packages)")
        settings = workload.settings(phase=phase, batch=batch, seq_len=seq_len,
                                     precision=precision, chips=mapping.ranks, **run)
        program = llm_program(workload, settings, mapping, rank_system)
    elif kind == "gemm":
        if precision is not None:
            workload = replace(workload, precision=precision)
        settings = RunSettings(phase="prefill", batch=1, seq_len=1, precision=workload.precision)
        program = gemm_program(workload, mapping, rank_system)
    elif kind == "collective":
        settings = RunSettings(phase="prefill", batch=1, seq_len=1, precision="bf16")
        program = collective_program(workload, mapping, rank_system)
    else:
        raise UserError(f"workload {workload!r} is not an LLM, GEMM or collective workload")
    if kind != "llm" and (run or batch is not None or seq_len is not None):
        raise UserError(f"batch, length and precision settings apply to LLM workloads only, "
                        f"not to {workload.name!r}")
    precision = rank_system.chip.resolve_precision(settings.precision)
    result = estimate_program(program, rank_system, network=net, predict=predict)
    t = result["totals"]
    step = t["time"]
    if step <= 0:
        raise UserError(f"workload {workload.name!r} does no work on {system.name}")
    produced = program.output_tokens if settings.phase == "decode" else program.tokens
    rank_chip = rank_system.chip
    per_rank_flops = t["matrix_flops"]
    # Utilisation is taken against the peak of the precision most of the FLOPs run at
    # (the experts' for a mixture-of-experts model).
    peak_precision = (rank_chip.resolve_precision(settings.expert_precision)
                      if kind == "llm" and workload.is_moe else precision)
    peak = rank_chip.peak_flops(peak_precision)
    roof = {"compute": t["roof_compute"], "memory": t["roof_memory"],
            "fabric": t["roof_fabric"]}
    shares = {"compute": t["bound_compute"], "memory": t["bound_memory"],
              "fabric": t["comm_exposed"]}
    resident = program.weight_bytes + program.kv_cache_bytes
    usable = rank_chip.usable_hbm_bytes
    fits = resident <= usable
    notes = list(program.notes)
    packages = program.chips / per_package
    # An LLM instance runs every rank of a package alike, so package figures are the rank's
    # times its ranks; a single GEMM or collective keeps the figures of the ranks it uses.
    scale = per_package if kind == "llm" else 1
    if not fits:
        message = (f"weights and KV cache of {resident / 1e9:.1f} GB per rank do not fit the "
                   f"{usable / 1e9:.1f} GB of HBM left after the "
                   f"{rank_chip.kernels.hbm_reserve_fraction:.0%} reserve on "
                   f"{system.chip.name} (batch {settings.batch}, sequence {settings.seq_len})")
        if refuse_unfit and kind == "llm":
            raise UserError(message + "; accepted: a smaller batch or context, or more ranks")
        notes.append("does not fit: " + message)
    return Estimate(
        system=system.name, workload=workload.name, phase=settings.phase, precision=precision,
        mapping=mapping.name, batch=settings.batch, seq_len=settings.seq_len,
        chips=packages, ranks=program.chips, step_s=step,
        tokens_per_s=produced / step, tokens_per_s_per_chip=produced / step / packages,
        compute_s=t["compute"], memory_s=t["memory"], onchip_s=t["onchip"],
        memory_exposed_s=t["memory_exposed"], comm_s=t["comm"],
        comm_exposed_s=t["comm_exposed"],
        comm_overlapped_s=_clean(t["comm"] - t["comm_exposed"]),
        overhead_s=t["overhead"], kernels=int(round(t["kernels"])),
        bound=max(shares, key=shares.get), utilization=per_rank_flops / step / peak,
        roofline_s=max(roof.values()), roofline_compute_s=roof["compute"],
        roofline_memory_s=roof["memory"], roofline_fabric_s=roof["fabric"],
        roofline_bound=max(roof, key=roof.get), flops=per_rank_flops * scale,
        hbm_bytes=t["hbm_bytes"] * scale, fabric_bytes=t["fabric_bytes"] * scale,
        weight_bytes=program.weight_bytes * scale,
        kv_cache_bytes=program.kv_cache_bytes * scale, fits_in_hbm=fits,
        blocks=result["blocks"], notes=tuple(notes),
        network_source="; ".join(result["sources"]),
        extrapolation=EXTRAPOLATION if any(
            getattr(op, "extrapolated", False) for b in result["blocks"] for op in b.ops)
        else "", kind=kind, tokens_per_sequence=program.tokens_per_sequence,
        two_batch_overlap=program.overlap_microbatches > 1 and program.pipeline == "none",
        pipeline=program.pipeline)


def _clean(seconds: float) -> float:
    """A difference of sums that should be zero and is a rounding error away from it."""
    return 0.0 if seconds < 1e-12 else seconds


def _truncate(model: LlmModel, layers: int) -> LlmModel:
    """The model cut to its first ``layers`` layers (for a transformer-layer estimate)."""
    if isinstance(layers, bool) or not isinstance(layers, int) or not 1 <= layers <= model.layers:
        raise UserError(f"layers must be a whole number from 1 to {model.layers} for "
                        f"{model.name}, not {layers!r}")
    dense = min(model.dense_layers, layers)
    return replace(model, layers=layers, dense_layers=dense,
                   name=f"{model.name}[{layers} layer{'s' if layers > 1 else ''}]")
