"""Reusable formal properties: the valid/ready stream contract and small history helpers."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from amaranth.hdl import Assert, Assume, Cat, Module, Mux, Signal, Value, ValueLike

from .runner import StructuralCheck

__all__ = ["past", "stream_contract", "valid_independent_of_ready", "rr_pointer",
           "rr_distance", "ROLES"]

#: ``"assume"`` for streams the environment drives, ``"assert"`` for those the design drives.
ROLES = ("assume", "assert")


def past(m: Module, value: ValueLike, *, name: str, init: int = 0) -> Signal:
    """A register holding ``value`` as it was one cycle ago (``init`` in the first cycle)."""
    value = Value.cast(value)
    reg = Signal(value.shape(), name=name, init=init)
    m.d.sync += reg.eq(value)
    return reg


def stream_contract(m: Module, port: Any, *, name: str, role: str) -> Signal:
    """The valid/ready handshake rules for one ``amaranth.lib.stream`` interface.

    Once ``valid`` is high without ``ready``, it stays high in the next cycle and the payload
    does not change. ``role`` says whether the rule is assumed of the environment (inputs)
    or asserted of the design (outputs). That ``valid`` never waits for ``ready`` is a
    property of the netlist, see :func:`valid_independent_of_ready`; an assumed input
    stream is driven by free signals that cannot depend on ``ready``.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    check = Assert if role == "assert" else Assume
    stalled = past(m, port.valid & ~port.ready, name=f"{name}_stalled")
    payload = Value.cast(port.payload)
    held = past(m, payload, name=f"{name}_held")
    with m.If(stalled):
        m.d.comb += [
            check(port.valid, f"{name}.valid held until ready"),
            check(payload == held, f"{name}.payload stable until ready"),
        ]
    return stalled


def valid_independent_of_ready(factory: Callable[[], Any], port: str, *,
                               name: str | None = None) -> StructuralCheck:
    """Structural check: no combinational path from ``<port>__ready`` to ``<port>__valid``.

    ``port`` is the Verilog-style prefix of the stream in the design's port list
    (``"c"``, ``"out__0"``); ``factory`` builds the bare design.
    """
    name = name or f"{port.replace('__', '.')}.valid does not depend on {port.replace('__', '.')}.ready"
    return StructuralCheck(name=name, component_factory=factory,
                           selection=f"w:{port}__valid %cie* w:{port}__ready %i")


def _suffix_masks(n):
    """The priority masks a round-robin arbiter of ``n`` can hold: all ones, or bits above j."""
    full = (1 << n) - 1
    return [full] + [full & ~((1 << (j + 1)) - 1) for j in range(n)]


def rr_pointer(m: Module, mask: Value, *, name: str) -> Signal:
    """The pointer of a round-robin priority ``mask``: the index of its lowest set bit (0 when
    the mask is empty, which gives the same order)."""
    n = len(mask)
    pointer = Signal(range(n), name=name)
    for j in reversed(range(n)):
        with m.If(mask[j]):
            m.d.comb += pointer.eq(j)
    return pointer


def rr_distance(m: Module, pointer: Value, r: int, n: int, *, name: str) -> Signal:
    """How many requesters of a round-robin arbiter of ``n`` come before ``r`` from
    ``pointer`` (0: ``r`` is served first)."""
    distance = Signal(range(n), name=name)
    m.d.comb += distance.eq(Mux(pointer <= r, r - pointer, r + n - pointer))
    return distance


def round_robin_fairness(m, *, name, req, grant, mask, update, serves=True):
    """Assert that a round-robin arbiter serves every steady requester within ``n - 1`` moves.

    ``req``/``grant`` are the arbiter's request and one-hot grant vectors, ``mask`` its
    priority mask (requesters at or after the pointer) and ``update`` whether its priority
    moves this cycle. For each requester a counter of the moves it lost while requesting is
    kept; the proof is the inductive invariant ``lost + distance(pointer, r) <= n - 1``
    (each lost move takes the pointer past a requester ahead of ``r``). ``update`` should be
    computed by the harness, not read from the design: the pointer is asserted to move just
    past the grant when ``update`` is high, and to stay otherwise. With ``serves=False``
    only the mask's form is asserted (for a proof that measures the arbiter otherwise).
    """
    n = len(req)
    tag = re.sub(r"\W+", "_", name).strip("_")
    masks = _suffix_masks(n)
    m.d.comb += Assert(Cat(*[mask == k for k in masks]).any(),
                       f"{name}: priority mask is a round-robin pointer")
    if not serves:
        return
    pointer = rr_pointer(m, mask, name=f"{tag}_pointer")
    moved = Signal(name=f"{tag}_moved")
    m.d.comb += moved.eq(update & grant.any())
    # The pointer moves just past the grant when the grant is used, and only then.
    was_moved = past(m, moved, name=f"{tag}_was_moved")
    was_grant = past(m, grant, name=f"{tag}_was_grant")
    was_mask = past(m, mask, name=f"{tag}_was_mask", init=masks[0])
    above = Cat(*[was_grant[:k].any() for k in range(n)])
    m.d.comb += Assert(mask == Mux(was_moved, above, was_mask),
                       f"{name}: the pointer moves past the grant exactly when it is used")
    for r in range(n):
        lost = Signal(range(n + 1), name=f"{tag}_lost{r}")
        distance = rr_distance(m, pointer, r, n, name=f"{tag}_dist{r}")
        with m.If(~req[r]):
            m.d.sync += lost.eq(0)
        with m.Elif(moved & grant[r]):
            m.d.sync += lost.eq(0)
        with m.Elif(moved):
            m.d.sync += lost.eq(lost + 1)
        with m.If(req[r]):
            m.d.comb += [
                Assert(lost + distance <= n - 1, f"{name}: requester {r} is next within "
                                                 f"the pointer distance"),
                Assert(lost <= n - 1, f"{name}: requester {r} is served within {n - 1} "
                                      f"moves of the priority"),
            ]
