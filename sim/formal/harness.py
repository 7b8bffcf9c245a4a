"""Base class of the property harnesses: a design wrapped with its assumptions and checks."""

from amaranth.hdl import Elaboratable

__all__ = ["Harness"]


class Harness(Elaboratable):
    """A design under proof together with its ``Assume``, ``Assert`` and ``Cover`` statements.

    Subclasses set ``kind``, ``default_depth`` (k-induction length that closes the proof
    for small configurations) and ``cover_depth``, build the design in :meth:`design` and
    wrap it in :meth:`elaborate`. The environment is free (``AnySeq``) except where a
    property assumes otherwise.

    Members
    -------
    params : dict
        The keyword parameters; they key the build directory.
    """

    kind = None
    default_depth = 10
    cover_depth = 20

    def __init__(self, **params):
        self.params = dict(params)
        # A harness is a job description that the runner elaborates; it may well be built
        # and discarded (a refused job), which is no design error worth a warning.
        self._MustUse__silence = True

    def design(self):
        """A fresh instance of the bare design under proof."""
        raise NotImplementedError

    def structural_checks(self):
        """Netlist checks on the bare design (a list of ``StructuralCheck``)."""
        return []
