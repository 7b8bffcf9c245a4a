"""Sub-commands of the ``supernode`` command, and the argument types they share."""

import argparse


def positive_int(text):
    """argparse type: a positive integer, or one sentence naming the bad value."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return value
