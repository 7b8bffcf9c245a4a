"""supernode: an AI supernode modelled from the register-transfer level up."""

from .errors import UserError

__all__ = ["UserError"]
