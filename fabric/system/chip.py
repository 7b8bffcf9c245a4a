"""Tile -> AI core -> chip: a GEMM spread over every systolic tile of a package, timed by the tile model."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from supernode.fabric.tile_model import TileEstimate

    from .hardware import ChipSpec
    from .program import Gemm, Vector

__all__ = ["GemmEstimate", "gemm_on_chip", "vector_on_chip", "rtl_tile_predict", "split_gemm",
           "reuse_traffic", "ACCUMULATOR_BYTES"]

#: A tile cycle model: ``predict(rows=, cols=, dataflow=, m=, k=, n=)`` as
#: :func:`supernode.fabric.tile_model.predict`.
TilePredict: TypeAlias = "Callable[..., TileEstimate]"


def rtl_tile_predict() -> TilePredict:
    """The RTL-checked tile cycle model."""
    from supernode.fabric.tile_model import predict   # deferred: it imports Amaranth (about 0.3 s)
    return predict


@lru_cache(maxsize=1 << 16)
def _cycles(predict: TilePredict, rows: int, cols: int, dataflow: str, m: int, k: int,
            n: int) -> int:
    return predict(rows=rows, cols=cols, dataflow=dataflow, m=m, k=k, n=n).total_cycles


@dataclass(frozen=True)
class GemmEstimate:
    """One GEMM (or a batch of them) on one package: the detailed time beside its roofline.

    Members
    -------
    name : str
    flops : float
    tile_cycles : int
        Cycles of the busiest tile, from the tile cycle model.
    tiles_used : int
        Tiles with work, out of every tile of the package.
    compute_s : float
        ``tile_cycles / clock / precision rate``.
    hbm_bytes : float
        HBM traffic including re-reads when an operand does not fit the on-chip buffer.
    hbm_s, onchip_s : float
        HBM and on-chip-buffer traffic time.
    time_s : float
        ``max(compute_s, hbm_s, onchip_s)`` plus the first buffer load (or the last
        block's compute) that double-buffering cannot hide; ``compute_s`` and ``hbm_s``
        are at the rates kernels achieve (:class:`~supernode.fabric.system.hardware.KernelSpec`).
    compulsory_bytes : float
        Each operand read and the result written once: the roofline's traffic.
    roofline_s : float
        ``max(flops / peak, compulsory_bytes / HBM bandwidth)``.
    bound : str
        ``"compute"``, ``"memory"`` (HBM) or ``"onchip"``.
    """
    name: str
    flops: float
    tile_cycles: int
    tiles_used: int
    compute_s: float
    hbm_bytes: float
    hbm_s: float
    onchip_s: float
    time_s: float
    compulsory_bytes: float
    roofline_s: float
    bound: str


def _row_cuts(m: int, limit: int) -> list[int]:
    """Every useful cut ``pm <= limit`` of ``m`` blocks: the smallest giving each height."""
    cuts, pm = [], 1
    while pm <= limit:
        cuts.append(pm)
        height = math.ceil(m / pm)
        if height == 1:
            break
        # Next cut that makes the pieces strictly lower.
        pm = max(pm + 1, math.ceil(m / (height - 1)))
    return cuts


def split_gemm(m: int, n: int, parts: int, rows: int, cols: int,
               cost: Callable[[int, int], Any]) -> tuple[int, int, Any]:
    """Best way to cut an ``m x n`` output over ``parts`` workers: ``(pm, pn, cost)``.

    ``cost(mp, np_)`` gives the time of one worker's ``mp x np_`` piece; rows of ``C`` are
    cut ``pm`` ways and columns ``pn`` ways with ``pm x pn <= parts``, in whole blocks of
    ``rows x cols`` (a tile's shape): a piece that is not a whole number of blocks only
    idles part of a tile. Every distinct piece height is tried with as many column cuts as
    remain, so more workers never give a slower best cut (when ``cost`` grows with the
    piece).
    """
    best = None
    mb, nb = math.ceil(m / rows), math.ceil(n / cols)      # tile blocks along each side
    for pm in _row_cuts(mb, min(parts, mb)):
        pn = max(1, min(parts // pm, nb))
        piece_m = min(m, math.ceil(mb / pm) * rows)
        piece_n = min(n, math.ceil(nb / pn) * cols)
        c = cost(piece_m, piece_n)
        if best is None or c < best[2] or (c == best[2] and pm * pn < best[0] * best[1]):
            best = (pm, pn, c)
    return best


#: Bytes of one accumulator of an output block kept on chip (FP32 partial sums): an
#: assumption of the blocking model, not a published figure.
ACCUMULATOR_BYTES = 4


def reuse_traffic(m: int, k: int, n: int, a_bytes: int, b_bytes: int, c_bytes: int,
                  buffer_bytes: float) -> float:
    """Bytes moved into a buffer of ``buffer_bytes`` for ``C[m, n] = A[m, k] @ B[k, n]``.

    Output-stationary blocking: half the buffer holds a ``bm x bn`` block of FP32 partial
    sums while panels of ``A`` and ``B`` stream through the other half, so ``A`` is read
    ``ceil(n / bn)`` times and ``B`` ``ceil(m / bm)`` times. The block is as square as the
    buffer and the GEMM allow; when an operand fits, this is the compulsory traffic.
    """
    cells = max(buffer_bytes / 2.0 / ACCUMULATOR_BYTES, 1.0)
    side = max(1, int(math.isqrt(int(cells))))
    if m <= side:
        bm, bn = m, max(1, min(n, int(cells // m)))
    elif n <= side:
        bn, bm = n, max(1, min(m, int(cells // n)))
    else:
        bm = bn = side
    a = m * k * a_bytes
    b = k * n * b_bytes
    return a * math.ceil(n / bn) + b * math.ceil(m / bm) + m * n * c_bytes


def gemm_on_chip(gemm: Gemm, chip: ChipSpec, *, predict: TilePredict | None = None
                 ) -> GemmEstimate:
    """Time ``gemm`` (a :class:`~supernode.fabric.system.program.Gemm`) on every tile of ``chip``.

    Tile level: each tile's piece is timed by ``predict`` (the RTL-checked tile cycle model
    unless another is given). Core and chip level: independent GEMMs of a batch go to
    different tiles; when there are fewer GEMMs than tiles, each is cut over rows and
    columns of ``C`` (no split of the reduction). The busiest tile sets the compute time.
    HBM traffic follows :func:`reuse_traffic` with the package's on-chip buffer, and the
    traffic from that buffer into the cores with each core's local buffer.
    """
    predict = predict or rtl_tile_predict()
    core = chip.core
    rows, cols, dataflow = core.tile_rows, core.tile_cols, core.tile_dataflow
    tiles = chip.cores * core.tiles_per_core
    m, k, n = gemm.m, gemm.k, gemm.n
    instances = max(1, math.ceil(gemm.batch - 1e-9))
    scale = gemm.batch / instances             # fractional batch: an expected count

    def tile_cost(mp, np_):
        return _cycles(predict, rows, cols, dataflow, mp, k, np_)

    if instances >= tiles:
        rounds = math.ceil(instances / tiles)
        cycles = rounds * tile_cost(m, n)
        used = tiles
    else:
        per = tiles // instances
        pm, pn, cycles = split_gemm(m, n, per, rows, cols, tile_cost)
        used = instances * pm * pn
    rate = core.precision_rate[gemm.precision]
    compute_s = cycles / core.clock_hz / rate * scale
    flops = gemm.flops

    a = m * k * gemm.a_bytes
    b = k * n * gemm.b_bytes
    c = m * n * gemm.c_bytes
    compulsory = (a + b + c) * gemm.batch
    hbm_bytes = reuse_traffic(m, k, n, gemm.a_bytes, gemm.b_bytes, gemm.c_bytes,
                              chip.onchip_buffer_bytes) * gemm.batch
    hbm_s = hbm_bytes / chip.hbm_bandwidth_bytes_per_s

    # Core level: the same cut over cores, each core's operands through its local buffer.
    cores = chip.cores
    def core_traffic(mp, np_):
        return reuse_traffic(mp, k, np_, gemm.a_bytes, gemm.b_bytes, gemm.c_bytes,
                             core.local_buffer_bytes)

    if instances >= cores:
        core_bytes = core_traffic(m, n) * instances
    else:
        pm, pn, per_core = split_gemm(m, n, cores // instances, rows, cols, core_traffic)
        core_bytes = per_core * pm * pn * instances
    onchip_s = core_bytes * scale / chip.onchip_bandwidth_bytes_per_s

    # What kernels achieve: matrix and HBM rates of the kernel kind (weights or attention).
    kernels = chip.kernels
    if gemm.b_is_weight:
        compute_s *= (k + kernels.reduction_overhead) / k / kernels.matrix_efficiency
        hbm_s /= kernels.hbm_efficiency
    else:
        compute_s /= kernels.attention_compute_efficiency
        hbm_s /= kernels.attention_memory_efficiency
    # Loads are double-buffered under compute in each core's local buffer; the first
    # buffer's worth of the shorter side is not hidden.
    fills = max(1.0, hbm_bytes / (chip.cores * core.local_buffer_bytes / 2.0))
    prologue = min(compute_s, hbm_s) / fills
    time_s = max(compute_s, hbm_s, onchip_s) + prologue
    longest = max(compute_s, hbm_s, onchip_s)
    bound = ("compute" if longest == compute_s else "memory" if longest == hbm_s else "onchip")
    roofline_s = max(flops / chip.peak_flops(gemm.precision),
                     compulsory / chip.hbm_bandwidth_bytes_per_s)
    return GemmEstimate(name=gemm.name, flops=flops, tile_cycles=cycles, tiles_used=used,
                        compute_s=compute_s, hbm_bytes=hbm_bytes, hbm_s=hbm_s,
                        onchip_s=onchip_s, time_s=time_s, compulsory_bytes=compulsory,
                        roofline_s=roofline_s, bound=bound)


def vector_on_chip(vector: Vector, chip: ChipSpec) -> float:
    """Seconds for element-wise work: its arithmetic spread over every core's vector unit,
    or its HBM traffic at the rate kernels achieve, whichever is longer."""
    core = chip.core
    compute = vector.flops / (chip.cores * core.vector_flops_per_cycle * core.clock_hz)
    memory = vector.bytes / (chip.hbm_bandwidth_bytes_per_s * chip.kernels.hbm_efficiency)
    return max(compute, memory)
