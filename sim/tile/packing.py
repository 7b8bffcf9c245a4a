"""Pack operand beats into the tile's stream payload bits and unpack result rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from amaranth.hdl import Shape
from amaranth.lib import data

from supernode.rtl.tile import operand_layouts, result_layout
from supernode.rtl.tile_params import TileParamsLike, as_tile_params

__all__ = ["Packer"]


def _field(layout: data.StructLayout, name: str) -> data.Field:
    for field_name, field in layout:
        if field_name == name:
            return field
    raise KeyError(name)


class Packer:
    """Converts between numpy beats and payload integers for one tile configuration
    (a :class:`~supernode.rtl.tile_params.TileParams` or a mapping of its parameters)."""

    def __init__(self, params: TileParamsLike) -> None:
        self.params = params = as_tile_params(params)
        self.rows, self.cols, self.dataflow = params.rows, params.cols, params.dataflow
        self.in_width, self.acc_width, self.signed = (params.in_width, params.acc_width,
                                                      params.signed)
        self.a_layout, self.b_layout = operand_layouts(params)
        self.c_layout = result_layout(params)
        self._a_flags = [(i, _field(self.a_layout, name).offset)
                         for i, name in enumerate(("last", "accumulate", "emit"))
                         if params.dataflow == "ws" or name == "last"]
        self._c_last = _field(self.c_layout, "last").offset
        self.c_width = Shape.cast(self.c_layout).width

    @staticmethod
    def _vector(values: Iterable[Any], width: int) -> int:
        mask = (1 << width) - 1
        word = 0
        for index, value in enumerate(values):
            word |= (int(value) & mask) << (index * width)
        return word

    def pack_a(self, a: Iterable[Iterable[Any]], flags: Iterable[Sequence[Any]]) -> list[int]:
        """One payload integer per ``a`` beat."""
        words = []
        for values, beat_flags in zip(a, flags):
            word = self._vector(values, self.in_width)
            for index, offset in self._a_flags:
                word |= int(beat_flags[index]) << offset
            words.append(word)
        return words

    def pack_b(self, b: Iterable[Iterable[Any]]) -> list[int]:
        """One payload integer per ``b`` beat."""
        return [self._vector(values, self.in_width) for values in b]

    def unpack_c(self, word: int) -> tuple[list[int], int]:
        """``(values, last)`` of one result payload integer."""
        mask = (1 << self.acc_width) - 1
        values = []
        for j in range(self.cols):
            v = (word >> (j * self.acc_width)) & mask
            if self.signed and v >> (self.acc_width - 1):
                v -= 1 << self.acc_width
            values.append(v)
        return values, (word >> self._c_last) & 1
