"""What both network models check and how a run fails: scoreboard, watchdog, routing-table writes."""

from collections.abc import Iterable

__all__ = ["ScoreboardError", "DeadlockError", "check_cfg_writes"]


class ScoreboardError(AssertionError):
    """A flit was lost, duplicated, misrouted, corrupted or reordered."""


class DeadlockError(AssertionError):
    """The watchdog saw no flit move for too long while packets were in flight."""


def check_cfg_writes(cfg_writes: Iterable[tuple[int, int, int]], *, destinations: int,
                     ports: int) -> None:
    """Refuse a routing-table write the models cannot make: the RTL ignores a write beyond
    its table or of a port it lacks, so such a write is a mistake in the caller's list."""
    for c, d, p in cfg_writes:
        if not (0 <= d < destinations and 0 <= p < ports):
            raise ValueError(f"a routing-table write needs a destination from 0 to "
                             f"{destinations - 1} and a port from 0 to {ports - 1}, "
                             f"not {(c, d, p)!r}")
