"""Performance models calibrated on the RTL, aggregated up to the full supernode."""

#: Public names of the system estimator, imported on first use so ``import supernode.fabric`` stays cheap.
_SYSTEM_NAMES = ("load_system", "load_chip", "load_workload", "load_mapping", "estimate",
                 "slo_search", "compare", "validate", "system_totals")


def __getattr__(name):
    if name in _SYSTEM_NAMES:
        # Deferred: the estimator loads on first use of these names, not with every
        # `import supernode.fabric.<model>` (the cocotb benches import supernode.fabric.tile_model).
        from . import system
        return getattr(system, name)
    raise AttributeError(f"module 'supernode.fabric' has no attribute {name!r}")
