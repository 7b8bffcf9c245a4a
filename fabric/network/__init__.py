"""Network model: cycle-level router and Clos models calibrated on the RTL, and the figures they give."""

from .figures import NetworkFigures, clos_figures, default_clos_shape
from .model import RouterModel, NetworkModel, router_network, clos_network
from .traffic import (PATTERNS, TrafficSpec, TrafficSchedule, Endpoints, ScoreboardError,
                      DeadlockError, run_model)

__all__ = [
    "NetworkFigures", "clos_figures", "default_clos_shape",
    "RouterModel", "NetworkModel", "router_network", "clos_network",
    "PATTERNS", "TrafficSpec", "TrafficSchedule", "Endpoints", "ScoreboardError",
    "DeadlockError", "run_model",
]
