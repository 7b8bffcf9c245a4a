"""Run a GEMM on the tile in Amaranth's own simulator (no Verilog, quick for small arrays)."""

import numpy as np
from amaranth.sim import Simulator

from fabric.tile_model import operand_beats, result_row_count, result_rows_to_matrix
from rtl.tile import SystolicTile
from rtl.tile_params import as_tile_params

from .packing import Packer

__all__ = ["run_gemm_pysim"]


def run_gemm_pysim(params, A, B, *, a_gaps=(), b_gaps=(), c_stalls=(), timeout=100_000):
    """Stream ``A @ B`` through a :class:`~rtl.tile.SystolicTile` of ``params`` (a
    :class:`~rtl.tile_params.TileParams` or a mapping of its parameters).

    ``a_gaps``/``b_gaps``/``c_stalls`` are repeating 0/1 patterns: a 1 holds that stream's
    valid (or the result ``ready``) low on that cycle. Returns ``(C, cycles)`` with
    ``cycles = {"first_operand", "first_result", "last_result"}`` in clock cycles.
    """
    params = as_tile_params(params)
    tile = SystolicTile(params=params)
    packer = Packer(params)
    a, flags, b, folds = operand_beats(A, B, params)
    a_words, b_words = packer.pack_a(a, flags), packer.pack_b(b)
    expected_rows = result_row_count(folds, params)
    got, cycles = [], {}

    def gap(pattern, cycle):
        return bool(pattern) and bool(pattern[cycle % len(pattern)])

    async def bench(ctx):
        ia = ib = cycle = 0
        while len(got) < expected_rows:
            if cycle > timeout:
                raise TimeoutError(f"tile produced {len(got)} of {expected_rows} rows "
                                   f"in {timeout} cycles")
            ctx.set(tile.a.valid, ia < len(a_words) and not gap(a_gaps, cycle))
            if ia < len(a_words):
                ctx.set(tile.a.payload.as_value(), a_words[ia])
            ctx.set(tile.b.valid, ib < len(b_words) and not gap(b_gaps, cycle))
            if ib < len(b_words):
                ctx.set(tile.b.payload.as_value(), b_words[ib])
            ctx.set(tile.c.ready, not gap(c_stalls, cycle))
            _, _, a_fire, b_fire, c_ok, c_word = await ctx.tick().sample(
                tile.a.valid & tile.a.ready, tile.b.valid & tile.b.ready, tile.c.valid,
                tile.c.payload.as_value())
            if (a_fire or b_fire) and "first_operand" not in cycles:
                cycles["first_operand"] = cycle
            ia += a_fire
            ib += b_fire
            if c_ok and ctx.get(tile.c.ready):
                cycles.setdefault("first_result", cycle)
                cycles["last_result"] = cycle
                got.append(packer.unpack_c(c_word)[0])
            cycle += 1

    sim = Simulator(tile)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    m, n = np.shape(A)[0], np.shape(B)[1]
    return result_rows_to_matrix(got, folds, params, m=m, n=n), cycles
