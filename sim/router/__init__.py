"""Router and Clos benches: cocotb on Icarus/Verilator, and Amaranth's own simulator."""

from .common import Design, run_rtl, run_amaranth, run_model_for

__all__ = ["Design", "run_rtl", "run_amaranth", "run_model_for"]
