"""Errors that the CLI turns into one clear line on stderr and exit code 2, and the one way of
shortening any exception to such a line. A leaf module: it imports nothing, so every layer may
import it."""


class UsageError(Exception):
    """Bad usage or bad input: the message says what is wrong and how to fix it."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
