"""Internal signals (or blocks) a design publishes by name, for the proofs that read them."""

from __future__ import annotations

from amaranth.hdl import Value, ValueLike

__all__ = ["Published"]


class Published(dict):
    """A design's internal signals by name, filled by the design as it creates them.

    A proof that states invariants on internal state reads the signals here rather than
    searching the elaborated netlist. When the design renames or drops a signal, the
    lookup fails with a message naming it instead of the proof silently checking
    something else; a name published twice is refused for the same reason.

    Parameters
    ----------
    design : str
        The design's name, for messages (``"tile"``).
    what : str
        What it publishes here, for messages (``"signal"``, ``"arbiter"``).
    """

    def __init__(self, design: str, what: str = "signal") -> None:
        super().__init__()
        self.design, self.what = design, what

    def publish(self, *signals: ValueLike, **named: ValueLike) -> None:
        """Publish each signal under its own name, each keyword's signal under the keyword.

        A signal of a layout (a ``data.View``) is published as its underlying signal.
        """
        for signal in signals:
            self._add(Value.cast(signal).name, signal)
        for name, signal in named.items():
            self._add(name, signal)

    def _add(self, name, signal):
        if name in self:
            raise KeyError(f"the {self.design} publishes two {self.what}s named {name!r}")
        self[name] = Value.cast(signal)

    def __missing__(self, name):
        raise KeyError(f"the {self.design} publishes no {self.what} named {name!r} (is it "
                       f"elaborated, or was it renamed?); its proof harness needs it")
