"""Reach a design's internal signals by name, so that a harness can state invariants on them."""

from amaranth.hdl import Fragment

__all__ = ["ProbeError", "Probes", "elaborate_with_probes"]


class ProbeError(LookupError):
    """A harness asked for an internal signal that the design does not have."""


class Probes:
    """The named signals of an elaborated design (its whole hierarchy).

    A proof that reads internal state depends on the names the design gives its
    signals; when one is renamed, the lookup fails with a message naming it instead of
    the proof silently checking something else.

    Members
    -------
    names : frozenset of str
        Every signal name found.
    """

    def __init__(self, fragment, *, design_name="design"):
        self._by_name = {}
        self._design_name = design_name
        self._collect(fragment)
        self.names = frozenset(self._by_name)

    def _collect(self, fragment):
        for stmts in fragment.statements.values():
            for stmt in stmts:
                for sig in stmt._lhs_signals() | stmt._rhs_signals():
                    self._by_name.setdefault(sig.name, []).append(sig)
        for sub, _name, _src in fragment.subfragments:
            self._collect(sub)

    def __getitem__(self, name):
        found = {id(s): s for s in self._by_name.get(name, ())}
        if not found:
            raise ProbeError(f"the {self._design_name} has no internal signal named {name!r}; "
                             "its proof harness needs it (was it renamed?)")
        if len(found) > 1:
            raise ProbeError(f"the {self._design_name} has {len(found)} signals named "
                             f"{name!r}; its proof harness needs exactly one")
        return next(iter(found.values()))

    def __contains__(self, name):
        return name in self._by_name


def elaborate_with_probes(design, platform, *, design_name=None):
    """Elaborate ``design`` once; return its fragment (to add as a submodule) and probes."""
    fragment = Fragment.get(design, platform)
    return fragment, Probes(fragment, design_name=design_name or type(design).__name__)
