"""Reusable formal properties: the valid/ready stream contract and small history helpers."""

from amaranth.hdl import Assert, Assume, Signal, Value
from amaranth.lib import data

from .runner import StructuralCheck

__all__ = ["past", "stream_contract", "valid_independent_of_ready", "ROLES"]

#: ``"assume"`` for streams the environment drives, ``"assert"`` for those the design drives.
ROLES = ("assume", "assert")


def past(m, value, *, name, init=0):
    """A register holding ``value`` as it was one cycle ago (``init`` in the first cycle)."""
    value = Value.cast(value)
    reg = Signal(value.shape(), name=name, init=init)
    m.d.sync += reg.eq(value)
    return reg


def stream_contract(m, port, *, name, role):
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


def valid_independent_of_ready(factory, port, *, name=None):
    """Structural check: no combinational path from ``<port>__ready`` to ``<port>__valid``.

    ``port`` is the Verilog-style prefix of the stream in the design's port list
    (``"c"``, ``"out__0"``); ``factory`` builds the bare design.
    """
    name = name or f"{port.replace('__', '.')}.valid does not depend on {port.replace('__', '.')}.ready"
    return StructuralCheck(name=name, component_factory=factory,
                           selection=f"w:{port}__valid %cie* w:{port}__ready %i")
