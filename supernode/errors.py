"""The one exception type for bad user input, shown by the CLI as a sentence."""


class UserError(ValueError):
    """Bad input from a user: a parameter, a config file or an argument.

    The message is one sentence naming the bad value and what is accepted; the CLI
    prints it without a traceback and exits with status 2.
    """
