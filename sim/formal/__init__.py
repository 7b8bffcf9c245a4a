"""Formal verification: property harnesses of the tile and router, and the SymbiYosys runner."""

from .runner import ENGINES, MODES, FormalResult, StructuralCheck, run_formal
from .toolchain import FormalToolError, toolchain_env

__all__ = ["ENGINES", "MODES", "FormalResult", "StructuralCheck", "run_formal",
           "FormalToolError", "toolchain_env"]
