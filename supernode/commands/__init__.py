"""Sub-commands of the ``supernode`` command."""
