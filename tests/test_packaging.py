"""The base install runs the estimator; a command that needs an extra names it in one sentence."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from supernode.cli import EXTRA_OF_MODULE

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())

#: Runs the CLI with every optional package made unimportable, as in a base install.
WITHOUT_EXTRAS = """
import sys
for name in {modules!r}:
    sys.modules[name] = None
from supernode.cli import main
sys.exit(main({argv!r}))
"""


def _run_without_extras(argv):
    code = WITHOUT_EXTRAS.format(modules=sorted(EXTRA_OF_MODULE), argv=argv)
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def test_base_dependencies_are_the_rtl_and_the_estimator():
    base = {dep.split("[")[0].split(">")[0] for dep in PYPROJECT["project"]["dependencies"]}
    assert base == {"amaranth", "numpy", "numba"}
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"sim", "formal", "dse", "waves", "all", "dev"} <= set(extras)
    assert "supernode[all]" in extras["dev"]
    for module, named in EXTRA_OF_MODULE.items():
        assert set(named) <= set(extras), module


def test_estimate_runs_without_the_extras():
    proc = _run_without_extras(["estimate", "--system", "cloudmatrix384", "--workload",
                                "deepseek-r1", "--phase", "decode", "--json"])
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("argv, command, extra", [
    (["tile", "sim", "--rows", "2", "--cols", "2", "--dataflow", "os", "--m", "2", "--k", "2",
      "--n", "2"], "'supernode tile sim'", "sim"),
    (["sweep", "examples/tile_array_shapes.toml", "--quiet"], "sweep", "dse"),
    (["area", "tile", "--rows", "2", "--cols", "2"], "area needs Yosys", "formal"),
])
def test_a_command_needing_an_extra_names_it(argv, command, extra):
    """Nothing is run or written: the sentence names the extra to install."""
    proc = _run_without_extras(argv)
    assert proc.returncode == 2, proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("supernode: error")]
    assert "Traceback" not in proc.stderr and len(error) == 1
    assert f"[{extra}] extra" in error[0] and f"pip install 'supernode[{extra}]'" in error[0]
    assert command in error[0]


def test_the_shipped_configs_are_package_data():
    data = PYPROJECT["tool"]["setuptools"]["package-data"]["fabric"]
    shipped = {p for pattern in data for p in (REPO / "fabric").glob(pattern)}
    assert {p.stem for p in shipped} >= {"cloudmatrix384", "deepseek-r1", "cloudmatrix384-moe-decode"}
