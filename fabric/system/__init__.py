"""Chip, node and supernode estimator: hardware, workload and mapping files in, time and bound out."""

from .hardware import (ChipSpec, CoreSpec, FabricTier, NodeSpec, SystemSpec, chip_totals,
                       load_chip, load_system, system_totals)

__all__ = ["ChipSpec", "CoreSpec", "FabricTier", "NodeSpec", "SystemSpec", "chip_totals",
           "load_chip", "load_system", "system_totals"]
