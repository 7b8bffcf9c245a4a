"""Design-space exploration: sweep specs, cached parallel evaluation on Dask, Pareto, plots."""

from .cache import ResultCache, point_key, write_atomic
from .evaluators import KINDS, ModelMismatchError, evaluate_point, load_evaluator
from .pareto import pareto_mask
from .spec import SweepSpec, load_spec, parse_spec
from .sweep import SweepReport, default_out_dir, run_sweep

__all__ = [
    "KINDS", "ModelMismatchError", "ResultCache", "SweepReport", "SweepSpec",
    "default_out_dir", "evaluate_point", "load_evaluator", "load_spec", "parse_spec",
    "pareto_mask", "point_key", "run_sweep", "write_atomic",
]
