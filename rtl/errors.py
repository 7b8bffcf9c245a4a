"""The one exception type for bad user input, and the integer check every block's parameters use."""

from __future__ import annotations

__all__ = ["UserError", "check_int"]


class UserError(ValueError):
    """Bad input from a user: a parameter, a config file or an argument.

    The message is one sentence naming the bad value and what is accepted; the CLI
    prints it without a traceback and exits with status 2.
    """


def check_int(name: str, value: object, lo: int, hi: int, *, lo_text: str | None = None) -> int:
    """Raise :class:`UserError` unless ``value`` is an integer (not a bool) from ``lo`` to ``hi``.

    ``lo_text`` words the lower bound when it derives from another parameter
    (``"2*in_width (16)"``).
    """
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise UserError(f"{name} must be an integer from {lo_text or lo} to {hi}, "
                        f"not {value!r}")
    return value
