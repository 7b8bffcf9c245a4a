"""The one exception type for bad user input, at the bottom layer so every layer can raise it."""


class UserError(ValueError):
    """Bad input from a user: a parameter, a config file or an argument.

    The message is one sentence naming the bad value and what is accepted; the CLI
    prints it without a traceback and exits with status 2.
    """
