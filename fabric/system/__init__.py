"""Chip, node and supernode serving estimator: hardware, workload and deployment files in; time, throughput under a latency limit, and the published points it is held to out."""

from .hardware import (ChipSpec, CoreSpec, FabricTier, NodeSpec, SystemSpec, chip_totals,
                       load_chip, load_system, system_totals)
from .mapping import Mapping, default_mapping, load_mapping
from .workload import (LlmModel, RunSettings, collective_workload, gemm_workload,
                       load_workload)
from .estimate import Estimate, estimate
from .slo import SloResult, slo_search
from .comparison import compare
from .validation import validate
from .report import demo_table

__all__ = ["ChipSpec", "CoreSpec", "FabricTier", "NodeSpec", "SystemSpec", "chip_totals",
           "load_chip", "load_system", "system_totals", "Mapping", "default_mapping",
           "load_mapping", "LlmModel", "RunSettings", "collective_workload", "gemm_workload",
           "load_workload", "Estimate", "estimate", "SloResult", "slo_search", "compare",
           "validate", "demo_table"]
