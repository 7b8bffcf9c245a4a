"""Chip, node and supernode estimator: hardware, workload and mapping files in, time and bound out."""

from .hardware import (ChipSpec, CoreSpec, FabricTier, NodeSpec, SystemSpec, chip_totals,
                       load_chip, load_system, system_totals)
from .mapping import Mapping, default_mapping, load_mapping
from .workload import (LlmModel, RunSettings, collective_workload, gemm_workload,
                       load_workload)
from .estimate import Estimate, estimate
from .comparison import compare
from .report import demo_table

__all__ = ["ChipSpec", "CoreSpec", "FabricTier", "NodeSpec", "SystemSpec", "chip_totals",
           "load_chip", "load_system", "system_totals", "Mapping", "default_mapping",
           "load_mapping", "LlmModel", "RunSettings", "collective_workload", "gemm_workload",
           "load_workload", "Estimate", "estimate", "compare", "demo_table"]
