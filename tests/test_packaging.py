"""The base install runs the estimator; a command that needs an extra names it in one sentence."""

import subprocess
import sys
import re
import shutil
import tomllib
import zipfile
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


def _wheel(tmp_path_factory):
    """The wheel ``pip wheel`` builds from this checkout, as a zip file."""
    out = tmp_path_factory.mktemp("wheel")
    # A copy of the sources, so setuptools' build/ and egg-info stay out of the checkout.
    source = out / "source"
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "results", "*.egg-info", "__pycache__", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--wheel-dir", str(out), str(source)],
                   check=True, capture_output=True, timeout=600)
    (path,) = out.glob("supernode-*.whl")
    return zipfile.ZipFile(path)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory):
    return _wheel(tmp_path_factory)


def test_the_wheel_takes_one_import_name(wheel):
    """``fabric``, ``sim`` and ``rtl`` are other distributions' names: the layers install
    as ``supernode.fabric``, ``supernode.sim`` and ``supernode.rtl``."""
    top = {name.split("/")[0] for name in wheel.namelist()}
    assert top == {"supernode", "supernode-0.1.0.dist-info"}


def test_the_wheel_holds_every_module_and_data_file(wheel):
    names = set(wheel.namelist())
    for folder in ("rtl", "sim", "fabric"):
        for path in (REPO / folder).rglob("*.py"):
            assert f"supernode/{path.relative_to(REPO).as_posix()}" in names, path
    for path in (REPO / "supernode").rglob("*.py"):
        if not any(part in ("rtl", "sim", "fabric", "examples")
                   for part in path.relative_to(REPO / "supernode").parts):
            assert f"supernode/{path.relative_to(REPO).as_posix()[len('supernode/'):]}" in names
    configs = {n for n in names if n.startswith("supernode/fabric/configs/")}
    assert {Path(n).stem for n in configs} >= {"cloudmatrix384", "deepseek-r1",
                                              "cloudmatrix384-moe-decode", "gb200-nvl72"}
    examples = {Path(n).name for n in names if n.startswith("supernode/examples/")}
    assert examples >= {p.name for p in (REPO / "examples").glob("*.toml")}
    assert "supernode/py.typed" in names


def test_a_shipped_example_runs_by_name():
    """``supernode sweep tile_array_shapes`` reads the example shipped with the package."""
    from supernode.dse import load_spec
    from supernode.dse.spec import example_names
    assert "tile_array_shapes" in example_names()
    assert load_spec("tile_array_shapes").name == load_spec(REPO / "examples"
                                                            / "tile_array_shapes.toml").name


def test_no_module_imports_a_layer_by_its_folder_name():
    """``import fabric`` would load a second copy of a layer (or another distribution)."""
    pattern = re.compile(r"^\s*(from|import)\s+(rtl|sim|fabric)\b", re.M)
    offenders = [str(path.relative_to(REPO))
                 for folder in ("rtl", "sim", "fabric", "supernode/commands", "supernode/dse",
                                "tests", "benchmarks", "examples")
                 for path in (REPO / folder).rglob("*.py") if pattern.search(path.read_text())]
    assert offenders == []
