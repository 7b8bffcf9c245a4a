"""Cached results depend on the source files their modules import, found by following imports."""

import pytest

from supernode.fabric import sources
from supernode.fabric.sources import imported_modules, source_digest
from supernode.dse.evaluators import load_evaluator


def test_network_figures_depend_on_every_module_the_model_imports():
    deps = imported_modules("supernode.fabric.network.figures")
    # The figures come from the model and the parameter objects the RTL also reads (the
    # published latencies, the queue numbering); tests hold the model to the RTL itself.
    for name in ("supernode.fabric.network.model", "supernode.fabric.network.traffic", "supernode.fabric.network.engine",
                 "supernode.fabric.network.flit", "supernode.rtl.router_params", "supernode.rtl.clos_params"):
        assert name in deps
    assert not any(name.startswith(("supernode.fabric.system", "supernode.sim", "supernode.dse",
                                    "supernode.commands", "supernode.cli")) for name in deps)


@pytest.mark.parametrize("kind, needed", [
    ("tile", ("supernode.fabric.tile_model", "supernode.rtl.tile", "supernode.sim.tile.run", "supernode.sim.tile.bench",
              "supernode.sim.tile.harness", "supernode.sim.area")),
    ("router", ("supernode.fabric.network.model", "supernode.fabric.network.engine", "supernode.fabric.network.traffic",
                "supernode.fabric.network.flit", "supernode.rtl.router", "supernode.rtl.clos", "supernode.rtl.router_harness",
                "supernode.sim.router.common", "supernode.sim.router.bench", "supernode.sim.area")),
    ("system", ("supernode.fabric.system.estimate", "supernode.fabric.system.chip", "supernode.fabric.system.comm",
                "supernode.fabric.network.figures", "supernode.fabric.tile_model")),
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
    monkeypatch.setattr(sources, "_PACKAGE", tmp_path)
    _tree(tmp_path, {
        "__init__.py": "",
        "rtl/__init__.py": "",
        "rtl/core.py": "X = 1\n",
        "rtl/other.py": "Y = 1\n",
        "fabric/__init__.py": "",
        "fabric/model.py": "def f():\n    from supernode.rtl.core import X  # deferred\n    return X\n",
        "fabric/user.py": "from . import model\n",
    })
    assert imported_modules("supernode.fabric.user") == (
        "supernode.fabric", "supernode.fabric.model", "supernode.fabric.user",
        "supernode.rtl.core")
    before = source_digest("supernode.fabric.user")
    (tmp_path / "rtl/other.py").write_text("Y = 2\n")
    assert source_digest("supernode.fabric.user") == before
    (tmp_path / "rtl/core.py").write_text("X = 2\n")
    assert source_digest("supernode.fabric.user") != before


def test_unknown_module_is_named():
    with pytest.raises(ValueError, match="'supernode.fabric.nowhere' is not a module"):
        imported_modules("supernode.fabric.nowhere")
    with pytest.raises(ValueError, match="'fabric.network' is not a module"):
        imported_modules("fabric.network")
    with pytest.raises(ValueError, match="'numpy' is not a module"):
        imported_modules("numpy")


def test_a_file_outside_the_packages_digests_with_what_it_imports(tmp_path, monkeypatch):
    """A user's harness: its own text and the project modules it imports set the digest."""
    monkeypatch.setattr(sources, "_PACKAGE", tmp_path / "supernode")
    _tree(tmp_path / "supernode", {
        "__init__.py": "",
        "rtl/__init__.py": "",
        "rtl/core.py": "X = 1\n",
        "rtl/other.py": "Y = 1\n",
    })
    harness = tmp_path / "harness.py"
    harness.write_text("from supernode.rtl.core import X\n")
    before = sources.file_digest(harness)
    (tmp_path / "supernode/rtl/other.py").write_text("Y = 2\n")
    assert sources.file_digest(harness) == before
    (tmp_path / "supernode/rtl/core.py").write_text("X = 2\n")
    changed = sources.file_digest(harness)
    assert changed != before
    harness.write_text("from supernode.rtl.core import X  # edited\n")
    assert sources.file_digest(harness) != changed


def test_a_definition_is_keyed_by_its_module_or_its_file():
    """Builds and place-and-route results are keyed by where their factory is defined."""
    from supernode.rtl.tile import SystolicTile
    assert sources.definition_digest(SystolicTile) == source_digest("supernode.rtl.tile")
    assert sources.definition_digest(test_unknown_module_is_named) == \
        sources.file_digest(__file__)
