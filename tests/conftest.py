"""Test-session settings a cocotb user expects: ``SIM`` chooses the simulators that run.

A test runs on a simulator when it is parametrised over one (a ``sim`` argument, or a
parameter tuple naming one) or marked ``@pytest.mark.simulator("icarus", ...)``. With
``SIM=icarus`` set, every test that needs another simulator is deselected, as cocotb's
Makefiles run only the simulator ``SIM`` names.
"""

import pytest

from supernode.rtl.errors import UserError
from supernode.sim.environment import SIMULATORS, selected_simulators


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "simulator(*names): the simulators a test runs on; SIM=name keeps only those")


def _simulators_of(item) -> set:
    """The simulators a collected test needs: its markers and its simulator parameters."""
    needed = set()
    for mark in item.iter_markers("simulator"):
        needed.update(mark.args)
    callspec = getattr(item, "callspec", None)
    for value in (callspec.params.values() if callspec else ()):
        values = value if isinstance(value, (tuple, list)) else (value,)
        needed.update(v for v in values if isinstance(v, str) and v in SIMULATORS)
    return needed


def pytest_collection_modifyitems(config, items):
    try:
        chosen = set(selected_simulators())
    except UserError as exc:
        raise pytest.UsageError(str(exc)) from None
    if chosen == set(SIMULATORS):
        return
    keep, drop = [], []
    for item in items:
        (keep if _simulators_of(item) <= chosen else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
