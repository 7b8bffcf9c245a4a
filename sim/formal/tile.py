"""Proof harness of the systolic tile: stream contracts, row order, buffers, latency, values."""

from __future__ import annotations

from amaranth.asserts import AnySeq
from amaranth.hdl import (Assert, Assume, Cat, Const, Cover, Fragment, Module, Mux, ResetSignal,
                          Shape, Signal, Value)
from amaranth.lib import data

from supernode.rtl.errors import UserError
from supernode.rtl.tile import SystolicTile
from supernode.rtl.tile_params import DATAFLOWS, TileParams

from .harness import Harness
from .properties import past, stream_contract, valid_independent_of_ready
from .runner import StructuralCheck

__all__ = ["TileHarness", "CONSUMERS", "FAULTS", "WS_SUMS_MAC_STAGES"]

#: ``"free"``: the consumer of ``c`` may stall at any time (contract, row order, double
#: buffer); ``"always_ready"``: it never stalls (exact output timing: the latencies).
CONSUMERS = ("free", "always_ready")

#: Deliberately broken tiles for the mutation tests (the RTL itself is not touched: the
#: mutant is a subclass). ``"short_fold_interval"`` (os): folds may follow each other after
#: one cycle instead of ``fold_interval``, so a result register can be overwritten
#: undrained. ``"early_bank_release"`` (ws): a weight bank is freed when the fold's last
#: beat enters the array instead of when it leaves the last cell. ``"long_fold"`` (ws): the
#: environment may send folds of more than ``acc_depth`` beats (an assumption dropped).
#: ``"dropped_product_bit"`` (both): the last cell multiplies by its activation with the
#: lowest bit cleared, so some result values are wrong while every stream and timing rule
#: still holds.
FAULTS = ("short_fold_interval", "early_bank_release", "long_fold", "dropped_product_bit")

#: Weight-stationary result values are proved for cells with at most this many register
#: stages: with more, a partial sum can still be in a cell when its fold's weight bank is
#: already being reloaded, and the reference kept here (the bank's current weights) no
#: longer describes it.
WS_SUMS_MAC_STAGES = 1
_FAULT_DATAFLOW = {"short_fold_interval": ("os",), "early_bank_release": ("ws",),
                   "long_fold": ("ws",), "dropped_product_bit": ("os", "ws")}


def _delay_line(m, first, shape, length, advance, name):
    """``length`` registers of ``shape``, ``name0`` onwards: each takes the one before it
    (the first takes ``first``) in every cycle the array advances, so register ``k`` holds
    what entered ``k + 1`` advancing cycles ago."""
    regs = []
    for k in range(length):
        reg = Signal(shape, name=f"{name}{k}")
        with m.If(advance):
            m.d.sync += reg.eq(first)
        first = reg
        regs.append(reg)
    return regs


class TileHarness(Harness):
    """Properties of a :class:`supernode.rtl.tile.SystolicTile`.

    The operand streams ``a`` and ``b`` are driven freely under the stream contract
    (assumed). Proves, with a consumer that may stall at any time:

    - ``c`` keeps the stream contract, and ``c.valid`` does not depend on ``c.ready``;
    - systolic alignment: each skew register and each cell's A and B operand registers
      hold the operands of the beat accepted ``i + j + 1`` advancing cycles ago (cell
      ``(i, j)``), so every cell multiplies operands of one and the same beat;
    - skew and de-skew: a fold's ``last`` marker moves through every row's skew chain and
      array row in lock-step (one marker per diagonal), its rows are written to the result
      queue in row order 0..rows-1 on consecutive advancing cycles, ``last`` on the final
      row, one row at a time, and never into a full queue;
    - the accumulator double buffer: a cell's result register is never overwritten by the
      next fold before its row has been written to the result queue (the fold spacing
      ``fold_interval`` enforced at the input is what makes this hold);
    - with ``sums``: every row written to the result queue holds its fold's sums of
      products, modulo ``2**acc_width`` (against sums the harness keeps from the accepted
      operands), through invariants on running sums carried beside the array, every
      accumulator and the result registers, each relating neighbouring stages (so the
      induction has depth 2 at any size);

    and, with a consumer that never stalls (``consumer="always_ready"``), the published
    timing: the first result row of a fold is offered exactly ``fill_latency`` cycles after
    the fold's final operand beat is accepted, the rows follow on consecutive cycles and the
    final one (with ``last``) comes ``drain_latency`` cycles after that beat.

    Weight-stationary tiles (``dataflow="ws"``) are proved for the ``c`` stream contract
    and ``c.valid``'s independence of ``c.ready`` (stalling consumer), and for their
    published timing (consumer never stalls): a result row is offered exactly
    ``fill_latency`` cycles after each accepted ``a`` beat that has ``emit`` set, carrying
    that beat's ``last``, and at no other time. With a stalling consumer their internals
    too: a weight bank is never written while it holds a fold not yet fully taken or while
    beats that multiply by it are in the array, ``a`` beats are taken only from a completely
    loaded bank, and (folds of at most ``acc_depth`` beats assumed) every beat reads and
    writes the kept partial-sum row of its own position in its fold, and a kept row changes
    only when the beat of its position stores into it. With ``sums`` their result values
    too: every row written to the result queue is ``sum_i a[i] * B[i][j]`` of its ``a``
    beat over the weights its fold loaded from ``b``, plus (with ``accumulate``) the
    partial row kept by the beat of the same position in the previous fold, modulo
    ``2**acc_width`` (against a reference the harness keeps from the accepted operands).

    Parameters
    ----------
    rows, cols, in_width, acc_width, signed, dataflow, acc_depth, mac_stages : tile parameters
        See :class:`supernode.rtl.tile_params.TileParams`; the defaults here are a tile small enough
        for the solver, not the tile's own. With ``mac_stages`` every property above holds
        with the cells' pipeline registers counted in the distances (weight-stationary
        result values up to :data:`WS_SUMS_MAC_STAGES` stages).
    consumer : str
        One of :data:`CONSUMERS`.
    sums : bool
        Stalling consumer: also prove every result value (output-stationary: each fold's
        sums of products; weight-stationary: each beat's sums plus the kept row it
        accumulates onto).
    fault : str or None
        One of :data:`FAULTS` to prove a broken tile instead (mutation test), or None.
    """

    kind = "tile"

    def __init__(self, *, rows: int = 2, cols: int = 2, in_width: int = 2, acc_width: int = 4,
                 signed: bool = True, dataflow: str = "os", acc_depth: int = 2,
                 mac_stages: int = 0, consumer: str = "free", fault: str | None = None,
                 sums: bool = True) -> None:
        bad = None
        if dataflow not in DATAFLOWS:
            bad = f"dataflow must be {' or '.join(map(repr, DATAFLOWS))}, not {dataflow!r}"
        elif consumer not in CONSUMERS:
            bad = f"consumer must be one of {', '.join(CONSUMERS)}, not {consumer!r}"
        elif fault is not None and fault not in FAULTS:
            bad = f"fault must be None or one of {', '.join(FAULTS)}, not {fault!r}"
        elif fault is not None and dataflow not in _FAULT_DATAFLOW[fault]:
            kind = {"os": "output", "ws": "weight"}[_FAULT_DATAFLOW[fault][0]]
            bad = f"fault {fault!r} is a fault of {kind}-stationary tiles, not of {dataflow!r}"
        elif (dataflow == "ws" and consumer == "free" and sums is True
              and mac_stages not in range(WS_SUMS_MAC_STAGES + 1)):
            bad = (f"weight-stationary result values are proved for mac_stages up to "
                   f"{WS_SUMS_MAC_STAGES}, not {mac_stages!r}; give sums=False for the rest")
        if bad:
            raise UserError(bad)
        try:
            tile_params = (ShortFoldIntervalParams if fault == "short_fold_interval"
                           else TileParams)(rows=rows, cols=cols, in_width=in_width,
                                            acc_width=acc_width, signed=signed,
                                            dataflow=dataflow, acc_depth=acc_depth,
                                            mac_stages=mac_stages)
        except (TypeError, ValueError):
            raise
        params = dict(rows=rows, cols=cols, in_width=in_width, acc_width=acc_width,
                      signed=signed, dataflow=dataflow)
        if dataflow == "ws":
            params["acc_depth"] = acc_depth
        if mac_stages:
            params["mac_stages"] = mac_stages
        if consumer == "free":
            if not isinstance(sums, bool):
                raise UserError(f"sums must be True or False, not {sums!r}")
            params["sums"] = sums
        super().__init__(**params, consumer=consumer, fault=fault)
        self.tile_params = tile = tile_params
        # Induction closes once every in-flight marker has left the array.
        depth_needed = tile.stages + 4
        if consumer == "always_ready":
            depth_needed = tile.drain_latency + tile.fold_interval + 4
        if dataflow == "ws":
            depth_needed = tile.fill_latency + 4
        if consumer == "free" and sums and fault is None:
            # Every value invariant ties a register to its neighbour one advancing cycle
            # away, so the induction closes at depth 1 whatever the array's size; each
            # further step only multiplies the arithmetic the solver must do. (A base case
            # this short finds no deep counterexample from reset: the mutants, and a broken
            # tile checked in ``bmc`` mode with a depth, look further.)
            depth_needed = 2
        self.default_depth = depth_needed
        self.cover_depth = tile.drain_latency + 2 * tile.fold_interval + 4

    def design(self) -> SystolicTile:
        cls = {"early_bank_release": EarlyBankReleaseTile,
               "dropped_product_bit": DroppedProductBitTile}.get(self.params["fault"],
                                                                 SystolicTile)
        return cls(params=self.tile_params)

    def structural_checks(self) -> list[StructuralCheck]:
        return [valid_independent_of_ready(self.design, "c")]

    def elaborate(self, platform: object) -> Module:
        m = Module()
        tile = self.design()
        # Elaborated here, so that the signals the tile publishes exist to be read.
        m.submodules.dut = Fragment.get(tile, platform)
        state = tile.state
        R, C = tile.rows, tile.cols
        interval = tile.fold_interval

        m.d.comb += Assume(~ResetSignal())
        for name in ("a", "b"):
            port = getattr(tile, name)
            m.d.comb += [port.valid.eq(AnySeq(1)),
                         port.payload.eq(AnySeq(Shape.cast(port.payload.shape()).width))]
            stream_contract(m, port, name=name, role="assume")
        if self.params["consumer"] == "always_ready":
            m.d.comb += tile.c.ready.eq(1)
        else:
            m.d.comb += tile.c.ready.eq(AnySeq(1))
        stream_contract(m, tile.c, name="c", role="assert")

        take = tile.a.valid & tile.a.ready
        accepted_last = Signal(name="accepted_last")
        m.d.comb += accepted_last.eq(take & tile.a.payload.last)

        if self.params["dataflow"] == "ws":
            emitted = Signal(name="accepted_emit")
            m.d.comb += emitted.eq(take & tile.a.payload.emit)
            if self.params["consumer"] == "always_ready":
                self._ws_timing(m, tile, emitted, accepted_last)
            else:
                shadow = self._ws_internals(m, tile, state, take)
                if self.params["sums"]:
                    self._ws_sums(m, tile, state, shadow)
                level = state["level"]
                m.d.comb += [
                    Cover(level == tile.params.result_queue_depth, "result queue full"),
                    Cover(tile.c.valid & tile.c.ready & tile.c.payload.last,
                          "a fold's last row leaves"),
                    Cover(tile.c.valid & ~tile.c.ready, "c stalled"),
                ]
        elif self.params["consumer"] == "always_ready":
            self._timing(m, tile, accepted_last)
        else:
            self._array(m, tile, state, R, C, interval, accepted_last)
        return m

    def _ws_internals(self, m, tile, state, take):
        """Weight banks and kept partial sums of a weight-stationary tile.

        Shadow state kept here from the streams alone: which bank ``b`` loads next and how
        far, which bank the next ``a`` fold uses, which banks hold a complete fold not yet
        fully taken (``loaded``), and each ``a`` beat's position in its fold, carried beside
        the array in a delay line that advances with it.
        """
        R, C, depth = tile.rows, tile.cols, tile.acc_depth
        advance = state["advance"]
        last = tile.a.payload.last
        a_bank = Signal(name="ws_a_bank")
        b_bank = Signal(name="ws_b_bank")
        b_row = Signal(range(R), name="ws_b_row")
        loaded = Signal(2, name="ws_loaded")
        b_take = tile.b.valid & tile.b.ready
        load_done = Signal(2, name="ws_load_done")
        m.d.comb += load_done.eq((b_take & (b_row == R - 1)) << b_bank)
        with m.If(b_take):
            m.d.sync += b_row.eq(Mux(b_row == R - 1, 0, b_row + 1))
            with m.If(b_row == R - 1):
                m.d.sync += b_bank.eq(~b_bank)
        with m.If(take & last):
            m.d.sync += a_bank.eq(~a_bank)
        m.d.sync += loaded.eq((loaded | load_done) & ~((take & last) << a_bank))

        # Every register of the array that carries an `a` beat, with the bank it multiplies
        # by, by its distance from the edge (the advancing cycles since the beat was taken).
        beat = data.StructLayout({"data": tile.element_shape, "valid": 1, "last": 1, "bank": 1})
        at = {}
        for i in range(R):
            for s in range(i):
                at.setdefault(s + 1, []).append(data.View(beat, state[f"a{i}_skew{s}"]))
            for j in range(C):
                at.setdefault(i + j + 1, []).append(data.View(beat, state[f"a_r{i}_c{j}"]))
        regs = [r for p in sorted(at) for r in at[p]]
        inflight = [Cat(*[r.valid & (r.bank == k) for r in regs]).any() for k in range(2)]
        tag = lambda r: Cat(r.valid, r.last, r.bank)          # noqa: E731
        # Oldest to newest: a fold's beats share a bank, the beat after a last the other one.
        expect, seen, closed = Const(0, 1), Const(0, 1), Const(0, 2)
        for p in sorted(at, reverse=True):
            first = at[p][0]
            for other in at[p][1:]:
                m.d.comb += Assert(tag(other) == tag(first),
                                   "ws: every row carries the same beat at the same distance")
            with m.If(first.valid & seen):
                m.d.comb += Assert(first.bank == expect, "ws: beats in the array use their "
                                                         "fold's bank, folds alternate banks")
            with m.If(first.valid):
                m.d.comb += Assert(~closed.bit_select(first.bank, 1),
                                   "ws: no beat of a bank follows that bank's ended fold in "
                                   "the array")
            expect = Mux(first.valid, Mux(first.last, ~first.bank, first.bank), expect)
            seen = seen | first.valid
            closed = closed | Mux(first.valid & first.last, 1 << first.bank, 0)
        m.d.comb += Assert(~seen | (expect == a_bank),
                           "ws: the next fold's bank follows the beats in the array")
        for k in range(2):
            ended = Cat(*[r.valid & r.last & (r.bank == k) for r in regs]).any()
            with m.If(loaded[k] & inflight[k]):
                m.d.comb += Assert(~ended & (a_bank == k),
                                   "ws: a loaded bank's beats in flight are of its own fold")
        in_use = Signal(2, name="ws_in_use")
        m.d.comb += in_use.eq(loaded | Cat(*inflight))
        busy, ready = state["busy"], state["ready"]
        m.d.comb += [
            Assert((state["load_bank"] == b_bank) & (state["load_row"] == b_row) &
                   (state["use_bank"] == a_bank),
                   "ws: the bank pointers follow the streams"),
            Assert(ready == loaded, "ws: a bank is ready exactly while it holds a fold not "
                                    "yet taken"),
            Assert((in_use & ~busy) == 0, "ws: a bank in use is busy"),
            Assert(~b_take | ~in_use.bit_select(b_bank, 1),
                   "ws: a weight bank is never written while its weights are loaded or in use"),
            Assert(~take | loaded.bit_select(a_bank, 1),
                   "ws: an a beat is taken only from a completely loaded weight bank"),
            Cover(b_take & inflight[0] & (b_bank == 1),
                  "ws: bank 1 is loaded while bank 0's fold is in the array"),
        ]

        # Kept partial sums: a beat reads and writes the kept row of its position in its fold.
        long_fold = self.params["fault"] == "long_fold"
        top = 2 * depth + 2 if long_fold else depth + 1     # a wider count when unbounded
        pos = Signal(range(top), name="ws_pos")
        with m.If(take):
            m.d.sync += pos.eq(Mux(last, 0, pos + 1))
        if not long_fold:
            m.d.comb += Assume(~take | last | (pos < depth - 1))
        else:
            m.d.comb += Assume(pos < top - 1)
        stage = data.StructLayout({"valid": 1, "last": 1, "pos": range(top)})
        entering = Signal(stage, name="ws_stage_in")
        m.d.comb += [entering.valid.eq(take), entering.last.eq(last), entering.pos.eq(pos)]
        chain = _delay_line(m, entering, stage, tile.stages, advance, "ws_stage")
        flags = data.StructLayout({"valid": 1, "last": 1, "accumulate": 1, "emit": 1})
        rtl_chain = [data.View(flags, state[f"flags_skew{s}"]) for s in range(tile.stages)]
        # Behind each stage (towards the input) the position of the next beat to arrive.
        behind = pos
        for s, (mine, theirs) in enumerate(zip(chain, rtl_chain)):
            m.d.comb += Assert((mine.valid == theirs.valid) & (~mine.valid | (mine.last ==
                                                                               theirs.last)),
                               "ws: the beat flags move with the beats")
            with m.If(mine.valid):
                m.d.comb += Assert((behind == Mux(mine.last, 0, mine.pos + 1)) &
                                   (long_fold | (mine.pos < depth)),
                                   "ws: beats in flight are in fold order")
            behind = Mux(mine.valid, mine.pos, behind)
        arrived, index = chain[-1], state["index"]
        m.d.comb += [
            Assert(long_fold | (pos < depth), "ws: a fold carries at most acc_depth beats"),
            Assert(index == behind, "ws: the kept-row index is the position of the next beat "
                                    "to reach the bottom"),
            Assert(~arrived.valid | (index == arrived.pos),
                   "ws: a beat reads and writes the kept row of its position in its fold"),
        ]
        emit = rtl_chain[-1].emit
        for n in range(depth):
            kept = Value.cast(state[f"kept{n}"])
            before = past(m, kept, name=f"ws_kept{n}_before")
            stored = past(m, advance & arrived.valid & ~emit & (arrived.pos == n),
                          name=f"ws_kept{n}_stored")
            started = past(m, 1, name=f"ws_kept{n}_started")
            m.d.comb += Assert(~started | stored | (kept == before),
                               "ws: a kept row changes only when the beat of its position "
                               "stores a partial row")
        m.d.comb += [
            Cover(advance & arrived.valid & rtl_chain[-1].accumulate & (arrived.pos == depth - 1),
                  "ws: the last kept row is accumulated onto"),
            Cover(advance & arrived.valid & ~emit & (arrived.pos == depth - 1),
                  "ws: the last kept row is stored"),
        ]
        return {"a_bank": a_bank, "b_bank": b_bank, "b_row": b_row, "b_take": b_take,
                "at": at, "chain": chain, "flags": rtl_chain}

    def _ws_sums(self, m, tile, state, shadow):
        """Every weight-stationary result row is its beat's sums of products, modulo
        ``2**acc_width``, plus the kept partial row it accumulates onto.

        The reference is kept here from the streams alone: shadow weight banks loaded from
        the accepted ``b`` beats, and for each accepted ``a`` beat the row of sums
        ``sum_i a[i] * B[i][j]`` over its fold's bank, computed when the beat is taken and
        carried beside the array with the beat's activations and flags; the kept partial
        rows are recomputed from that reference as the beats reach the bottom. Invariants
        relate it to the array: every activation register holds its beat's activation, every
        partial sum in a column is the products of the rows above it, and the kept rows and
        weight banks are the reference's.
        """
        R, C, depth, W = tile.rows, tile.cols, tile.acc_depth, tile.acc_width
        w = Shape.cast(tile.element_shape).width
        advance = state["advance"]
        at, chain, rtl_flags = shadow["at"], shadow["chain"], shadow["flags"]

        def value(bits):
            return bits.as_signed() if tile.signed else bits.as_unsigned()

        raw = lambda v: Value.cast(v).as_unsigned()           # noqa: E731

        # Shadow weight banks: row `b_row` of bank `b_bank` takes each accepted `b` beat.
        b_in = Value.cast(tile.b.payload.data)
        weights = [[[Signal(w, name=f"ws_weight{k}_r{i}_c{j}") for j in range(C)]
                     for i in range(R)] for k in range(2)]
        for k in range(2):
            for i in range(R):
                with m.If(shadow["b_take"] & (shadow["b_bank"] == k) & (shadow["b_row"] == i)):
                    m.d.sync += [weights[k][i][j].eq(b_in[j * w:(j + 1) * w])
                                 for j in range(C)]
                for j in range(C):
                    m.d.comb += Assert(raw(state[f"w{k}_r{i}_c{j}"]) == weights[k][i][j],
                                       "ws: the weight banks hold the b rows loaded into them")

        def sums(a_bits, bank, j, rows):
            """``sum_{i in rows} a[i] * B[bank][i][j]`` modulo ``2**acc_width``."""
            total = Const(0, W)
            for i in rows:
                weight = Mux(bank, weights[1][i][j], weights[0][i][j])
                total = total + value(a_bits[i * w:(i + 1) * w]) * value(weight)
            return total[:W]

        # Each beat's activations, bank, flags and reference row, beside the array.
        a_in = Value.cast(tile.a.payload.data)
        stage = data.StructLayout({"bank": 1, "accumulate": 1, "emit": 1,
                                   "a": R * w, "row": C * W})
        entering = Signal(stage, name="ws_sums_in")
        m.d.comb += [entering.bank.eq(shadow["a_bank"]),
                     entering.accumulate.eq(tile.a.payload.accumulate),
                     entering.emit.eq(tile.a.payload.emit), entering.a.eq(a_in),
                     entering.row.eq(Cat(*[sums(a_in, shadow["a_bank"], j, range(R))
                                           for j in range(C)]))]
        S = tile.mac_stages
        line = _delay_line(m, entering, stage, R + C + S, advance, "ws_sums")
        row_of = lambda d, j: line[d - 1].row[j * W:(j + 1) * W]       # noqa: E731

        # Activations: a register d cycles from the edge holds the beat taken d cycles ago.
        beat = data.StructLayout({"data": tile.element_shape, "valid": 1, "last": 1, "bank": 1})
        for i in range(R):
            regs = [(s + 1, f"a{i}_skew{s}") for s in range(i)]
            regs += [(i + j + 1, f"a_r{i}_c{j}") for j in range(C)]
            for d, name in regs:
                m.d.comb += Assert(raw(data.View(beat, state[name]).data)
                                   == line[d - 1].a[i * w:(i + 1) * w],
                                   "ws: every activation register holds its beat's activation")

        # In the array and its pipeline registers (distance d < rows + cols + mac_stages,
        # and a bank is not reloaded before distance rows + cols + 1) a beat's bank still
        # holds its weights, so its reference row is still its activations times that bank.
        for d in range(1, R + C + S):
            mine = line[d - 1]
            if d in at:
                theirs = at[d][0]
                m.d.comb += Assert((chain[d - 1].valid == theirs.valid) &
                                   (~theirs.valid | (mine.bank == theirs.bank)),
                                   "ws: the reference beats move with the array's beats")
            with m.If(chain[d - 1].valid):
                for j in range(C):
                    m.d.comb += Assert(row_of(d, j) == sums(mine.a, mine.bank, j, range(R)),
                                       "ws: a beat in the array multiplies by its fold's "
                                       "weights")
        for s, (mine, theirs) in enumerate(zip(line, rtl_flags)):
            with m.If(chain[s].valid):
                m.d.comb += Assert((mine.accumulate == theirs.accumulate) &
                                   (mine.emit == theirs.emit),
                                   "ws: the accumulate and emit flags move with the beats")

        # Products in the cells' pipeline registers: cell (i, j)'s stage k holds the product
        # of the beat i + j + 2 + k cycles in, whose weights are still in its bank.
        for i in range(R):
            for j in range(C):
                for k in range(S):
                    d = i + j + 2 + k
                    stage_reg = Value.cast(state[f"mac_r{i}_c{j}_skew{k}"])[:2 * w]
                    weight = Mux(line[d - 1].bank, weights[1][i][j], weights[0][i][j])
                    a_i = line[d - 1].a[i * w:(i + 1) * w]
                    with m.If(chain[d - 1].valid):
                        m.d.comb += Assert(stage_reg == (value(a_i) * value(weight))[:2 * w],
                                           "ws: a pipelined product is its beat's activation "
                                           "times its fold's weight")

        # Partial sums: cell (i, j) holds the beat i + j + 2 + mac_stages cycles in, summed
        # over rows 0..i; the bottom row's sums then wait in column j's de-skew registers.
        # The beat at the bottom is checked by the row it completes, below. A bottom-row sum
        # is the reference row kept since the beat was taken; a sum higher up is checked
        # against the bank, which is not reloaded before the beat is rows + cols + 1 in.
        for j in range(C):
            cells = [(i + j + 2 + S, i, state[f"psum_r{i}_c{j}"]) for i in range(R)]
            cells += [(R + j + 2 + S + s, R - 1, state[f"psum{j}_skew{s}"])
                      for s in range(C - 1 - j)]
            for d, i, reg in cells:
                if d >= R + C + S:
                    continue
                if i == R - 1:
                    reference = row_of(d, j)
                else:
                    reference = sums(line[d - 1].a, line[d - 1].bank, j, range(i + 1))
                with m.If(chain[d - 1].valid):
                    m.d.comb += Assert(raw(reg)[:W] == reference,
                                       "ws: a partial sum is its beat's products of the rows "
                                       "above it")

        # Kept partial rows of the reference, and the row each arriving beat completes.
        kept = [Signal(C * W, name=f"ws_kept_ref{n}") for n in range(depth)]
        arrived, mine = chain[-1], line[-1]
        previous = Signal(C * W, name="ws_kept_ref_read")
        for n in range(depth):
            with m.If(arrived.pos == n):
                m.d.comb += previous.eq(kept[n])
        produced = Signal(C * W, name="ws_row_ref")
        for j in range(C):
            part = Mux(mine.accumulate, previous[j * W:(j + 1) * W], 0)
            m.d.comb += produced[j * W:(j + 1) * W].eq(part + row_of(R + C + S, j))
        with m.If(advance & arrived.valid & ~mine.emit):
            for n in range(depth):
                with m.If(arrived.pos == n):
                    m.d.sync += kept[n].eq(produced)
        for n in range(depth):
            m.d.comb += Assert(raw(state[f"kept{n}"]) == kept[n],
                               "ws: the kept partial rows are the reference's")
        row = data.View(tile.c.payload.shape(), state["result_row"])
        out = Cat(*[Value.cast(row.data[j])[:W] for j in range(C)])
        with m.If(arrived.valid):
            m.d.comb += Assert(out == produced,
                               "ws: the row a beat completes at the bottom is its sums of "
                               "products plus the kept row it accumulates onto")
        with m.If(state["w_en"]):
            m.d.comb += Assert(out == produced,
                               "ws: each row written to the result queue is its beat's sums "
                               "of products plus the kept row it accumulates onto")
        m.d.comb += Cover(state["w_en"] & mine.accumulate & (produced != 0),
                          "ws: a row accumulated onto a kept row is written to the result "
                          "queue")

    def _ws_timing(self, m, tile, emitted, accepted_last):
        fill = tile.fill_latency
        history = Signal(fill, name="emit_history")
        last_history = Signal(fill, name="emit_last_history")
        m.d.sync += [history.eq(Cat(emitted, history[:-1])),
                     last_history.eq(Cat(emitted & accepted_last, last_history[:-1]))]
        m.d.comb += [
            Assert(tile.c.valid == history[fill - 1],
                   "a result row is offered exactly fill_latency cycles after each "
                   "emitting beat, and only then"),
            Assert(~tile.c.valid | (tile.c.payload.last == last_history[fill - 1]),
                   "a result row carries its beat's last"),
            Cover(tile.c.valid & tile.c.payload.last, "a fold's last row at fill_latency"),
            Cover(tile.c.valid & history[fill - 2], "back-to-back result rows"),
        ]

    # -- the array under a stalling consumer ---------------------------------------------------

    def _array(self, m, tile, state, R, C, interval, accepted_last):
        beat = data.StructLayout({"data": tile.element_shape, "valid": 1, "last": 1})

        def token(name):
            sig = state[name]
            if len(sig) != beat.size:
                raise KeyError(f"the tile's {name!r} is {len(sig)} bits wide, the proof "
                                 f"expects an operand beat of {beat.size} bits")
            return data.View(beat, sig)

        advance = state["advance"]
        row_done = state["row_done"]
        since_last = state["since_last"]
        w_en, w_rdy = state["w_en"], state["w_rdy"]

        # Every position that holds the beat accepted d advancing cycles ago, by d: the
        # skew and operand registers, then each cell's pipeline registers.
        S = tile.mac_stages
        staged = data.StructLayout({"product": tile.product_shape, "valid": 1, "last": 1})
        positions = {}
        for i in range(R):
            for s in range(i):
                positions.setdefault(s + 1, []).append((f"a{i}_skew{s}", token(f"a{i}_skew{s}")))
            for j in range(C):
                positions.setdefault(i + j + 1, []).append((f"a_r{i}_c{j}",
                                                            token(f"a_r{i}_c{j}")))
                for k in range(S):
                    name = f"mac_r{i}_c{j}_skew{k}"
                    positions.setdefault(i + j + 2 + k, []).append(
                        (name, data.View(staged, state[name])))
        # The register whose beat cell (i, j) adds: its last pipeline stage, or with none
        # its operand register.
        adding = {(i, j): (data.View(staged, state[f"mac_r{i}_c{j}_skew{S - 1}"]) if S
                           else token(f"a_r{i}_c{j}"))
                  for i in range(R) for j in range(C)}
        top = tile.stages               # row_done[R-1] holds the marker of delay R + C + S
        marker = {}                     # delay -> "a fold's last beat is here"
        for d in range(1, top + 1):
            if d in positions:
                (_, first), *others = positions[d]
                marker[d] = first.valid & first.last
                for name, other in others:
                    m.d.comb += Assert((other.valid == first.valid) & (other.last == first.last),
                                       f"skew: {name} moves in lock-step with its diagonal")
            if d >= C + 1 + S:
                done = row_done[d - C - 1 - S]
                if d in marker:
                    m.d.comb += Assert(done == marker[d],
                                       f"de-skew: row {d - C - 1 - S} completes with its marker")
                else:
                    marker[d] = done
        for d1 in range(1, top + 1):
            for d2 in range(d1 + 1, min(top, d1 + interval - 1) + 1):
                m.d.comb += Assert(~(marker[d1] & marker[d2]),
                                   "folds are at least fold_interval apart in the array")
        m.d.comb += Assert((since_last >= 1) & (since_last <= interval),
                           "fold spacing counter in range")
        for d in range(1, interval):
            with m.If(since_last == d):
                m.d.comb += Assert(marker[d] if d <= top else 1,
                                   "the newest fold's marker is since_last cycles in")
            with m.If(since_last > d):
                m.d.comb += Assert(~marker[d] if d <= top else 1,
                                   "no fold's marker is newer than since_last")

        # Systolic alignment: every operand register holds the operand of the beat accepted
        # as many advancing cycles ago as its distance from the edge of the array, so a cell
        # multiplies A[i] and B[j] of one and the same beat.
        a_at, b_at = self._alignment(m, tile, state, token, R, C, advance)

        # Row order: rows go to the result queue one at a time, in order, `last` on the final.
        expected = Signal(range(R), name="expected_row")
        draining = 0
        for d in range(C + 2 + S, top + 1):
            draining = draining | (marker[d].as_unsigned() * (d - C - 1 - S))
        row_last = Signal(name="row_last")
        result_row = data.View(tile.c.payload.shape(), state["result_row"])
        m.d.comb += row_last.eq(result_row.last)
        m.d.comb += [
            Assert(expected == draining, "row counter matches the draining fold"),
            Assert((row_done & (row_done - 1)) == 0, "one row completes at a time"),
            Assert(~w_en | w_rdy, "a completed row never finds the result queue full"),
        ]
        with m.If(w_en):
            m.d.comb += [
                Assert(row_done == (1 << expected)[:R],
                       "rows reach the result queue in row order"),
                Assert(row_last == (expected == R - 1), "last marks a fold's final row"),
            ]
            m.d.sync += expected.eq((expected + 1) % R if R > 1 else 0)

        # Double buffer: a result register is not rewritten before its row was drained.
        for i in range(R):
            for j in range(C):
                cell = adding[i, j]
                write = advance & cell.valid & cell.last
                drain = w_en & row_done[i]
                undrained = Signal(name=f"undrained_r{i}_c{j}")
                with m.If(write):
                    m.d.sync += undrained.eq(1)
                with m.Elif(drain):
                    m.d.sync += undrained.eq(0)
                held = 0
                for d in range(i + j + 2 + S, i + C + 2 + S):
                    held = held | marker[d]
                m.d.comb += [
                    Assert(undrained == held, f"result r{i} c{j} holds an undrained fold "
                                              "exactly while its marker is on the way out"),
                    Assert(~write | ~undrained | drain,
                           "the double buffer never overwrites a fold not yet drained"),
                ]

        if self.params["sums"]:
            self._fold_sums(m, tile, state, token, positions, marker, a_at, b_at,
                            accepted_last)

        level = state["level"]
        m.d.comb += [
            Cover(level == tile.params.result_queue_depth, "result queue full"),
            Cover(~advance & row_done.any(), "array stalled by the result queue"),
            Cover(accepted_last & marker[interval] if interval <= top else accepted_last,
                  "back-to-back folds, fold_interval apart"),
            Cover(tile.c.valid & tile.c.ready & tile.c.payload.last, "a fold's last row leaves"),
            Cover(tile.c.valid & ~tile.c.ready, "c stalled"),
        ]

    def _fold_sums(self, m, tile, state, token, positions, marker, a_at, b_at, accepted_last):
        """Every result is the sum of its fold's products, modulo ``2**acc_width``.

        The harness keeps the sums of the folds accepted at the input, newest first:
        ``sums[0]`` is the fold still open, ``sums[k]`` the one ended by the k-th newest
        ``last`` beat. Beside the array, per cell, a delay line carries the open fold's
        running sum as it stood after each advancing cycle, so every invariant adds at most
        one product: each stage's running sum is the next older stage's plus the product
        of the beat between them (zero after a fold's ``last``); a cell's accumulator is the
        running sum of the beat it added last; a fold's ``last`` beat in flight completes
        its kept sum; a result register waiting to be drained holds its fold's sum; the row
        written to the result queue is that row of the fold's sums.
        """
        R, C, S = tile.rows, tile.cols, tile.mac_stages
        W = tile.acc_width
        top = tile.stages
        interval = tile.fold_interval
        slots = 2 + (top - 1) // interval
        elem_signed = tile.signed

        def value(bits):
            return bits.as_signed() if elem_signed else bits.as_unsigned()

        def product(a_bits, b_bits):
            return (value(a_bits) * value(b_bits))

        a_in = Value.cast(tile.a.payload.data)
        b_in = Value.cast(tile.b.payload.data)
        w = Shape.cast(tile.element_shape).width
        take = tile.a.valid & tile.a.ready
        advance = state["advance"]
        sums = [[[Signal(W, name=f"fold_sum{k}_r{i}_c{j}") for j in range(C)]
                 for i in range(R)] for k in range(slots)]
        run = {}        # run[i, j][d - 1]: cell (i, j)'s open-fold sum after the cycle d back
        for i in range(R):
            for j in range(C):
                now = sums[0][i][j]
                p_in = product(a_in[i * w:(i + 1) * w], b_in[j * w:(j + 1) * w])
                # The open fold's sum after this cycle: what the running-sum line takes.
                after = Mux(take, Mux(tile.a.payload.last, 0, (now + p_in)[:W]), now)
                m.d.sync += now.eq(after)
                with m.If(take & tile.a.payload.last):
                    m.d.sync += sums[1][i][j].eq(now + p_in)
                    m.d.sync += [sums[k + 1][i][j].eq(sums[k][i][j])
                                 for k in range(1, slots - 1)]
                # The line reaches the beat the cell added last, i + j + 2 + S cycles back.
                run[i, j] = _delay_line(m, after, W, i + j + 2 + S, advance,
                                        f"run_sum_r{i}_c{j}_")
                m.d.comb += Assert(run[i, j][0] == now,
                                   "the newest running sum is the open fold's")

        # n[x]: fold ends (last markers) at delays 1..x.
        n = [Const(0, range(slots + 1))]
        for d in range(1, top + 1):
            count = Signal(range(slots + 1), name=f"ends_within{d}")
            m.d.comb += count.eq(n[-1] + marker[d])
            n.append(count)
        m.d.comb += Assert(n[top] <= slots - 1, "fold sums kept for every fold in flight")
        valid = {d: positions[d][0][1].valid for d in positions}

        def fold_sum(k, i, j):
            out = Signal(W, name=f"sum_sel_r{i}_c{j}_{len(self._sel)}")
            self._sel.append(out)
            for idx in range(slots):
                with m.If(k == idx):
                    m.d.comb += out.eq(sums[idx][i][j])
            return out

        def with_beat(i, j, d):
            """Cell (i, j)'s running sum before the beat d cycles back, plus its product."""
            return (run[i, j][d] + product(a_at(d, i), b_at(d, j)))[:W]

        self._sel = []
        for i in range(R):
            for j in range(C):
                x = i + j + 1 + S       # the beat in the cell's last stage is not yet added
                line = run[i, j]
                for d in range(1, x + 1):
                    added = with_beat(i, j, d)
                    m.d.comb += Assert(
                        line[d - 1] == Mux(marker[d], 0, Mux(valid[d], added, line[d])),
                        "a running sum is the older one plus the beat between them")
                    with m.If(marker[d]):
                        m.d.comb += Assert(fold_sum(n[d], i, j) == added,
                                           "a fold's last beat in flight completes its sum")
                acc = Value.cast(state[f"acc_r{i}_c{j}"])
                m.d.comb += Assert(acc[:W] == line[x],
                                   "an accumulator is the running sum of the beat it added "
                                   "last")
                result = Value.cast(state[f"result_r{i}_c{j}"])
                held = 0
                for d in range(i + j + 2 + S, i + C + 2 + S):
                    held = held | marker[d]
                with m.If(held):
                    m.d.comb += Assert(result[:W] == fold_sum(n[i + C + 1 + S], i, j),
                                       "an undrained result register holds its fold's sum")

        row = data.View(tile.c.payload.shape(), state["result_row"])
        with m.If(state["w_en"]):
            for i in range(R):
                with m.If(state["row_done"][i]):
                    for j in range(C):
                        m.d.comb += Assert(
                            Value.cast(row.data[j])[:W] == fold_sum(n[i + C + 1 + S], i, j),
                            "each row written to the result queue is its fold's sums")

    def _alignment(self, m, tile, state, token, R, C, advance):
        elem = tile.element_shape
        S = tile.mac_stages
        depth = R + C - 1 + S
        a_in = Value.cast(tile.a.payload.data)
        b_in = Value.cast(tile.b.payload.data)
        w = Shape.cast(elem).width
        # Index d: operands of the beat d cycles ago.
        a_hist = [a_in, *_delay_line(m, a_in, len(a_in), depth, advance, "a_history")]
        b_hist = [b_in, *_delay_line(m, b_in, len(b_in), depth, advance, "b_history")]
        a_at = lambda d, i: a_hist[d][i * w:(i + 1) * w]      # noqa: E731
        b_at = lambda d, j: b_hist[d][j * w:(j + 1) * w]      # noqa: E731
        self._a_at, self._b_at = a_at, b_at
        raw = lambda v: Value.cast(v).as_unsigned()           # noqa: E731
        for i in range(R):
            for s in range(i):
                m.d.comb += Assert(raw(token(f"a{i}_skew{s}").data) == a_at(s + 1, i),
                                   f"skew: A row {i} stage {s} holds the beat {s + 1} back")
            for j in range(C):
                m.d.comb += Assert(raw(token(f"a_r{i}_c{j}").data) == a_at(i + j + 1, i),
                                   "alignment: cell A operand is from the beat i+j+1 back")
        for j in range(C):
            for s in range(j):
                m.d.comb += Assert(raw(state[f"b{j}_skew{s}"]) == b_at(s + 1, j),
                                   f"skew: B column {j} stage {s} holds the beat {s + 1} back")
            for i in range(R):
                m.d.comb += Assert(raw(state[f"b_r{i}_c{j}"]) == b_at(i + j + 1, j),
                                   "alignment: cell B operand is from the beat i+j+1 back")
        # Pipelined cells: stage k of cell (i, j) holds the product of the beat k + 1
        # advancing cycles behind its operand registers.
        signed_values = tile.signed
        p = 2 * w
        for i in range(R):
            for j in range(C):
                for k in range(S):
                    d = i + j + 2 + k
                    a_v, b_v = a_at(d, i), b_at(d, j)
                    if signed_values:
                        a_v, b_v = a_v.as_signed(), b_v.as_signed()
                    stage = data.View(
                        data.StructLayout({"product": tile.product_shape, "valid": 1,
                                           "last": 1}),
                        state[f"mac_r{i}_c{j}_skew{k}"])
                    m.d.comb += Assert(raw(stage.product) == (a_v * b_v)[:p],
                                       "alignment: a cell's pipelined product is of the beat "
                                       "its stage holds")
        return a_at, b_at

    # -- exact timing under a consumer that never stalls ---------------------------------------

    def _timing(self, m, tile, accepted_last):
        R = tile.rows
        fill, drain = tile.fill_latency, tile.drain_latency
        length = max(fill + R - 1, drain)
        history = Signal(length + 1, name="last_history")   # bit d: a fold ended d cycles ago
        m.d.sync += history.eq(Cat(accepted_last, history[:-1]))
        hist = Cat(accepted_last, history[:-1])             # hist[d] for d = 0..length
        expect_valid = Cat(*[hist[fill + k] for k in range(R)]).any()
        first_row = hist[fill]
        m.d.comb += [
            Assert(tile.c.valid == expect_valid,
                   "result rows are offered exactly fill_latency..fill_latency+rows-1 "
                   "cycles after a fold's last beat"),
            Assert(~tile.c.valid | (tile.c.payload.last == hist[drain]),
                   "a fold's final row comes drain_latency cycles after its last beat"),
            Cover(first_row & tile.c.valid, "first result row at fill_latency"),
            Cover(hist[drain] & hist[drain - tile.fold_interval] & tile.c.valid,
                  "back-to-back folds drain without a gap"),
        ]


class ShortFoldIntervalParams(TileParams):
    """Parameters of a mutant tile that lets a fold follow the previous one after a single
    cycle (the tile enforces the ``fold_interval`` its parameters state)."""
    fold_interval = property(lambda self: 1)


class EarlyBankReleaseTile(SystolicTile):
    """A weight-stationary mutant that frees a weight bank when the fold's last beat
    enters the array: the bank release watches the first cell instead of the last."""

    def _a_rows(self, m, advance, take, beat, **fields):
        regs = super()._a_rows(m, advance, take, beat, **fields)
        if self.dataflow == "ws":
            regs[-1] = regs[-1][:-1] + [regs[0][0]]
        return regs


class DroppedProductBitTile(SystolicTile):
    """A mutant whose last cell multiplies by its activation with the lowest bit
    cleared (the activation registers themselves are intact)."""

    def _a_rows(self, m, advance, take, beat, **fields):
        regs = super()._a_rows(m, advance, take, beat, **fields)
        cell = regs[-1][-1]
        broken = Signal(beat, name="a_dropped_bit")
        m.d.comb += [broken.eq(cell),
                     broken.data.eq(Cat(Const(0, 1), Value.cast(cell.data)[1:]))]
        regs[-1] = regs[-1][:-1] + [broken]
        return regs
