"""Run a GEMM on the tile in Amaranth's own simulator (no Verilog, quick for small arrays)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from amaranth.sim import Simulator

from supernode.fabric.tile_model import operand_beats, result_row_count, result_rows_to_matrix
from supernode.rtl.tile import SystolicTile
from supernode.rtl.tile_params import TileParamsLike, as_tile_params

from .packing import Packer

__all__ = ["run_gemm_pysim"]


def _idle(pattern, cycle):
    return bool(pattern) and bool(pattern[cycle % len(pattern)])


class _Source:
    """Offers ``words`` on a stream in order, idling between beats on the cycles ``gaps``
    marks; a beat once offered stays valid, payload unchanged, until it is taken."""

    def __init__(self, port, words, gaps):
        self.port, self.words, self.gaps = port, words, gaps
        self.index = 0
        self.offered = False            # valid on the last cycle and not taken
        self.held_in_gap = 0            # cycles the gap pattern marked while a beat waited

    def drive(self, ctx, cycle):
        pending = self.index < len(self.words)
        idle = _idle(self.gaps, cycle)
        valid = pending and (self.offered or not idle)
        self.held_in_gap += valid and idle
        ctx.set(self.port.valid, valid)
        if pending:
            ctx.set(self.port.payload.as_value(), self.words[self.index])

    def clocked(self, valid, ready):
        """Account for the clock edge; returns whether a beat was taken."""
        self.offered = bool(valid and not ready)
        self.index += bool(valid and ready)
        return bool(valid and ready)


class _StreamMonitor:
    """Checks the stream rule on one stream: a valid beat stays valid, and its payload
    stays the same, until ``ready`` takes it. Counts the cycles a beat waited."""

    def __init__(self, name):
        self.name = name
        self.waiting = None             # (cycle first offered, payload) of a beat not taken
        self.stalls = 0

    def observe(self, cycle, valid, ready, payload):
        if self.waiting is not None:
            since, word = self.waiting
            if not valid:
                raise AssertionError(f"stream {self.name}: valid fell on cycle {cycle} before "
                                     f"ready took the beat offered since cycle {since}")
            if payload != word:
                raise AssertionError(f"stream {self.name}: the payload of the beat offered "
                                     f"since cycle {since} changed on cycle {cycle} before "
                                     f"ready took it")
        if valid and not ready:
            self.stalls += 1
            self.waiting = (self.waiting[0] if self.waiting else cycle, payload)
        else:
            self.waiting = None


def run_gemm_pysim(params: TileParamsLike, A: ArrayLike, B: ArrayLike, *,
                   a_gaps: Sequence[int] = (), b_gaps: Sequence[int] = (),
                   c_stalls: Sequence[int] = (), timeout: int = 100_000
                   ) -> tuple[NDArray[np.int64], dict[str, int]]:
    """Stream ``A @ B`` through a :class:`~supernode.rtl.tile.SystolicTile` of ``params`` (a
    :class:`~supernode.rtl.tile_params.TileParams` or a mapping of its parameters).

    ``a_gaps``/``b_gaps`` are repeating 0/1 patterns of idle cycles between beats: a 1 keeps
    that source from offering a new beat on that cycle, but a beat already offered stays
    valid until it is taken. ``c_stalls`` is a repeating 0/1 pattern: a 1 holds the result
    ``ready`` low on that cycle. A monitor on each of the three streams raises
    ``AssertionError`` when a beat offered and not taken is withdrawn or changed.

    Returns ``(C, cycles)`` with ``cycles = {"first_operand", "first_result",
    "last_result"}`` in clock cycles, plus ``"a_stalls"``, ``"b_stalls"`` and
    ``"c_backpressure"`` (cycles a valid beat waited for ``ready``) and ``"a_held_in_gap"``,
    ``"b_held_in_gap"`` (cycles a gap pattern marked while a beat waited, so stayed valid).
    """
    params = as_tile_params(params)
    tile = SystolicTile(params=params)
    packer = Packer(params)
    a, flags, b, folds = operand_beats(A, B, params)
    sources = {"a": _Source(tile.a, packer.pack_a(a, flags), a_gaps),
               "b": _Source(tile.b, packer.pack_b(b), b_gaps)}
    monitors = {name: _StreamMonitor(name) for name in ("a", "b", "c")}
    expected_rows = result_row_count(folds, params)
    got: list[list[int]] = []
    cycles: dict[str, int] = {}

    async def bench(ctx):
        cycle = 0
        while len(got) < expected_rows:
            if cycle > timeout:
                raise TimeoutError(f"tile produced {len(got)} of {expected_rows} rows "
                                   f"in {timeout} cycles")
            for source in sources.values():
                source.drive(ctx, cycle)
            ctx.set(tile.c.ready, not _idle(c_stalls, cycle))
            ports = [getattr(tile, name) for name in ("a", "b", "c")]
            _, _, *sampled = await ctx.tick().sample(
                *[signal for port in ports
                  for signal in (port.valid, port.ready, port.payload.as_value())])
            seen = {}
            for index, name in enumerate(("a", "b", "c")):
                valid, ready, word = sampled[3 * index:3 * index + 3]
                monitors[name].observe(cycle, valid, ready, word)
                seen[name] = (valid, ready, word)
            a_fire = sources["a"].clocked(*seen["a"][:2])
            b_fire = sources["b"].clocked(*seen["b"][:2])
            if (a_fire or b_fire) and "first_operand" not in cycles:
                cycles["first_operand"] = cycle
            c_valid, c_ready, c_word = seen["c"]
            if c_valid and c_ready:
                cycles.setdefault("first_result", cycle)
                cycles["last_result"] = cycle
                got.append(packer.unpack_c(c_word)[0])
            cycle += 1

    sim = Simulator(tile)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    cycles.update({"a_stalls": monitors["a"].stalls, "b_stalls": monitors["b"].stalls,
                   "c_backpressure": monitors["c"].stalls,
                   "a_held_in_gap": sources["a"].held_in_gap,
                   "b_held_in_gap": sources["b"].held_in_gap})
    m, n = np.shape(A)[0], np.shape(B)[1]
    return result_rows_to_matrix(got, folds, params, m=m, n=n), cycles
