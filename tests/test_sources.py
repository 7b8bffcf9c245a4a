"""Cached results depend on the source files their modules import, found by following imports."""

import pytest

from fabric import sources
from fabric.sources import imported_modules, source_digest
from supernode.dse.evaluators import load_evaluator


def test_network_figures_depend_on_every_module_the_model_imports():
    deps = imported_modules("fabric.network.figures")
    # The figures come from the model and the parameter objects the RTL also reads (the
    # published latencies, the queue numbering); tests hold the model to the RTL itself.
    for name in ("fabric.network.model", "fabric.network.traffic", "fabric.network.engine",
                 "fabric.network.flit", "rtl.router_params", "rtl.clos_params"):
        assert name in deps
    assert not any(name.startswith(("fabric.system", "sim", "supernode")) for name in deps)


@pytest.mark.parametrize("kind, needed", [
    ("tile", ("fabric.tile_model", "rtl.tile", "sim.tile.run", "sim.tile.bench",
              "sim.tile.harness", "sim.area")),
    ("router", ("fabric.network.model", "fabric.network.engine", "fabric.network.traffic",
                "fabric.network.flit", "rtl.router", "rtl.clos", "rtl.router_harness",
                "sim.router.common", "sim.router.bench", "sim.area")),
    ("system", ("fabric.system.estimate", "fabric.system.chip", "fabric.system.comm",
                "fabric.network.figures", "fabric.tile_model")),
])
def test_sweep_fingerprint_covers_the_models_and_benches(kind, needed):
    evaluator = load_evaluator(kind)
    deps = imported_modules(evaluator.__name__, *evaluator.SOURCES)
    assert set(needed) <= set(deps)


def _tree(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_change_in_an_imported_module_changes_the_digest(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "_ROOT", tmp_path)
    _tree(tmp_path, {
        "rtl/__init__.py": "",
        "rtl/core.py": "X = 1\n",
        "rtl/other.py": "Y = 1\n",
        "fabric/__init__.py": "",
        "fabric/model.py": "def f():\n    from rtl.core import X  # deferred\n    return X\n",
        "fabric/user.py": "from . import model\n",
    })
    assert imported_modules("fabric.user") == ("fabric", "fabric.model", "fabric.user", "rtl.core")
    before = source_digest("fabric.user")
    (tmp_path / "rtl/other.py").write_text("Y = 2\n")
    assert source_digest("fabric.user") == before
    (tmp_path / "rtl/core.py").write_text("X = 2\n")
    assert source_digest("fabric.user") != before


def test_unknown_module_is_named():
    with pytest.raises(ValueError, match="'fabric.nowhere' is not a module"):
        imported_modules("fabric.nowhere")
    with pytest.raises(ValueError, match="'numpy' is not a module"):
        imported_modules("numpy")
