"""What a Verilator build makes public and at which C++ level it compiles (no simulator run)."""

import pytest

from supernode.rtl.errors import UserError
from supernode.sim.runner import (FAST_BUILD_LEVEL, OPTIMIZED_LEVEL, export_verilog,
                        verilator_build_args, verilator_cxx_level, verilator_public_config)
from supernode.sim.tile.harness import TileHarness


@pytest.fixture(scope="module")
def harness_verilog(tmp_path_factory):
    path = tmp_path_factory.mktemp("harness") / "top.v"
    return export_verilog(TileHarness(rows=2, cols=2, dataflow="os", depth=64), path)


def test_public_config_names_every_port_and_nothing_else(harness_verilog):
    config = verilator_public_config(harness_verilog, [("*", "stats__*")])
    lines = config.splitlines()
    assert lines[0] == "`verilator_config"
    top = [line for line in lines if '-module "top"' in line]
    names = {line.split('-var "')[1].rstrip('"') for line in top}
    expected = {"clk", "rst", "start", "done", "a_count", "c_rows", "cycles", "a_seed"}
    assert expected <= names
    # Internal nets of the top module (the drivers' indices) stay private.
    assert not any(name.startswith("index") for name in names)
    assert lines[-1] == 'public_flat_rw -module "*" -var "stats__*"'


def test_harness_memories_are_a_verilog_module_without_initialisers(harness_verilog):
    text = harness_verilog.read_text()
    assert all(f") {name} (" in text for name in ("a_mem", "b_mem", "c_mem"))
    assert text.count("module bench_memory") == 1
    assert "/*verilator public_flat_rw*/" in text
    assert "a_mem[0] =" not in text


def test_public_config_needs_the_top_module(tmp_path):
    other = tmp_path / "other.v"
    other.write_text("module other(a);\n  input a;\nendmodule\n")
    with pytest.raises(ValueError, match="no module 'top'"):
        verilator_public_config(other)


@pytest.mark.parametrize("value, level", [("", FAST_BUILD_LEVEL), ("0", FAST_BUILD_LEVEL),
                                          ("1", OPTIMIZED_LEVEL), ("-O3", "-O3")])
def test_cxx_level_from_the_environment(monkeypatch, value, level):
    monkeypatch.setenv("SUPERNODE_VERILATOR_OPTIMIZE", value)
    assert verilator_cxx_level() == level
    assert verilator_build_args(level)[-2:] == ["-CFLAGS", level]


def test_bad_cxx_level_is_named(monkeypatch):
    monkeypatch.setenv("SUPERNODE_VERILATOR_OPTIMIZE", "fast")
    with pytest.raises(UserError, match="SUPERNODE_VERILATOR_OPTIMIZE must be 0, 1 or one "
                                        "of -O0, .*, not 'fast'"):
        verilator_cxx_level()
