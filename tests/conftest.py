"""Test-session settings a cocotb user expects: ``SIM`` chooses the simulators that run.

A test runs on a simulator when it is parametrised over one (a ``sim`` argument, or a
parameter tuple naming one) or marked ``@pytest.mark.simulator("icarus", ...)``. With
``SIM=icarus`` set, every test that needs another simulator is deselected, as cocotb's
Makefiles run only the simulator ``SIM`` names.

The order of the run: tests that took longer than :data:`LONG_S` in a recorded run
(``tests/durations.json``) start first, longest first, so that the workers of a parallel
run (pytest-xdist) end close together instead of one finishing a long build or proof
alone; the others follow in file order. ``--record-durations`` writes the run's times to
that file.
"""

import json
from pathlib import Path

import pytest

from supernode.rtl.errors import UserError
from supernode.sim.environment import SIMULATORS, selected_simulators


#: Each test's time (setup, call and teardown, seconds) in a run from an empty build
#: directory on two workers; the order of later runs comes from it.
DURATIONS = Path(__file__).with_name("durations.json")

#: Tests recorded as taking longer than this start first; shorter ones keep file order,
#: so that tests sharing a module fixture or a quick build stay together.
LONG_S = 2.0


def pytest_addoption(parser):
    parser.addoption("--record-durations", action="store_true",
                     help=f"write each test's time to {DURATIONS.name}, which orders later runs")


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
    if chosen != set(SIMULATORS):
        keep, drop = [], []
        for item in items:
            (keep if _simulators_of(item) <= chosen else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
    items[:] = long_first(items, _recorded())


#: Seconds per test id in this run (on the controller of a parallel run: every worker's).
_TIMES: dict = {}


def _test_id(nodeid: str) -> str:
    """A test's id without the ``@group`` suffix pytest-xdist's ``loadgroup`` gives it."""
    head, at, group = nodeid.rpartition("@")
    return head if at and "]" not in group and "/" not in group else nodeid


def _recorded() -> dict:
    try:
        return json.loads(DURATIONS.read_text())
    except (OSError, ValueError):
        return {}


def long_first(items: list, seconds: dict) -> list:
    """``items`` with those recorded as longer than :data:`LONG_S` first, longest first;
    the rest after them in their own order."""
    cost = [seconds.get(_test_id(item.nodeid), 0.0) for item in items]
    order = sorted(range(len(items)),
                   key=lambda i: (0, -cost[i], i) if cost[i] > LONG_S else (1, 0.0, i))
    return [items[i] for i in order]


def pytest_runtest_logreport(report):
    # On the controller of a parallel run too: the workers send it their reports.
    nodeid = _test_id(report.nodeid)
    _TIMES[nodeid] = _TIMES.get(nodeid, 0.0) + report.duration


def pytest_sessionfinish(session):
    config = session.config
    if not config.getoption("record_durations") or hasattr(config, "workerinput"):
        return
    times = {**_recorded(), **{k: round(v, 2) for k, v in _TIMES.items()}}
    DURATIONS.write_text(json.dumps(dict(sorted(times.items())), indent=0) + "\n")
