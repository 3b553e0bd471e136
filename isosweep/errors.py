"""Errors that the CLI turns into one clear line on stderr and exit code 2."""


class UsageError(Exception):
    """Bad usage or bad input: the message says what is wrong and how to fix it."""
