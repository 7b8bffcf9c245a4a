"""Base class of the property harnesses: a design wrapped with its assumptions and checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from amaranth.hdl import Elaboratable, Module

if TYPE_CHECKING:
    from .runner import StructuralCheck

__all__ = ["Harness"]


class Harness:
    """A design under proof together with its ``Assume``, ``Assert`` and ``Cover`` statements.

    Subclasses set ``kind``, ``default_depth`` (k-induction length that closes the proof
    for small configurations) and ``cover_depth``, build the design in :meth:`design` and
    wrap it in :meth:`elaborate`. The environment is free (``AnySeq``) except where a
    property assumes otherwise.

    A harness is a job description that the runner may refuse or discard, so it is not an
    ``Elaboratable`` itself (Amaranth would warn about every one not elaborated); the
    runner elaborates :meth:`top`.

    Members
    -------
    params : dict
        The keyword parameters; they key the build directory.
    """

    kind: str | None = None
    default_depth = 10
    cover_depth = 20

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)

    def design(self) -> Elaboratable:
        """A fresh instance of the bare design under proof."""
        raise NotImplementedError

    def elaborate(self, platform: object) -> Module:
        """The design under proof with its properties (a ``Module``)."""
        raise NotImplementedError

    def top(self) -> Elaboratable:
        """The elaboratable the runner converts: this harness's :meth:`elaborate`."""
        return _HarnessTop(self)

    def structural_checks(self) -> list[StructuralCheck]:
        """Netlist checks on the bare design (a list of ``StructuralCheck``)."""
        return []


class _HarnessTop(Elaboratable):
    def __init__(self, harness: Harness) -> None:
        self._harness = harness

    def elaborate(self, platform: object) -> Module:
        return self._harness.elaborate(platform)
