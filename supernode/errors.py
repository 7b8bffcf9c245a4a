"""The user-error type, re-exported where the CLI and ``from supernode import UserError`` find it."""

from supernode.rtl.errors import UserError

__all__ = ["UserError"]
