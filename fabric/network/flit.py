"""Flits as Python tuples, and their packing to and from the RTL flit layout."""

from typing import NamedTuple

from amaranth.lib import data

__all__ = ["Flit", "FlitCodec", "flit_data"]


class Flit(NamedTuple):
    """One flit: framing, virtual channel, identity of its packet and payload."""
    first: int
    last: int
    vc: int
    dest: int
    src: int
    pkt: int
    data: int


def flit_data(src: int, pkt: int, index: int, width: int) -> int:
    """Payload of flit ``index`` of packet ``(src, pkt)``: a hash the scoreboard re-computes."""
    x = (src * 0x9E3779B1 + pkt * 0x85EBCA77 + index * 0xC2B2AE3D + 0x27D4EB2F) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x2C1B3C6D) & 0xFFFFFFFF
    x ^= x >> 12
    out, shift = 0, 0
    while shift < width:
        out |= x << shift
        x = (x * 0x297A2D39 + 1) & 0xFFFFFFFF
        shift += 32
    return out & ((1 << width) - 1)


class FlitCodec:
    """Pack a :class:`Flit` into the integer of an RTL flit layout, and back.

    Parameters
    ----------
    layout : amaranth.lib.data.StructLayout
        The layout returned by :func:`supernode.rtl.router.flit_layout`; the field offsets are read
        from it, not restated here.
    """

    def __init__(self, layout: data.StructLayout) -> None:
        self._fields = [(layout[name].offset, (1 << layout[name].width) - 1)
                        for name in Flit._fields]
        self.width = layout.size

    def pack(self, flit: Flit) -> int:
        """Integer value of ``flit`` in the layout."""
        value = 0
        for (offset, mask), field in zip(self._fields, flit):
            value |= (field & mask) << offset
        return value

    def unpack(self, value: int) -> Flit:
        """The :class:`Flit` held in the integer ``value``."""
        return Flit(*[(value >> offset) & mask for offset, mask in self._fields])
