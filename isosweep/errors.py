"""Errors that the CLI turns into one clear line on stderr and exit code 2 (a full disk among
them), and the one way of shortening any exception to such a line. A leaf module: it imports
nothing, so every layer may import it."""


class UsageError(Exception):
    """Bad usage or bad input: the message says what is wrong and how to fix it."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class NoSpaceError(UsageError):
    """A write failed because its disk (or the user's quota there) is full: the user must free
    space or write elsewhere; retrying cannot help."""

    SWEEP = "start the sweep again with `isosweep run` (completed trials are kept)"
    """What to do next after a sweep stopped (``resume`` cannot restart the Ray trials it stopped)."""

    def __init__(self, where: str, then: str = SWEEP):
        super().__init__(f"no space left on {where}; free space there or choose another --store, then {then}")
        self.where = where


_NO_SPACE_ERRNOS = (28, 122)
"""ENOSPC and EDQUOT (Linux numbering; the message is matched too, for errors that carry none)."""
_NO_SPACE_TEXT = ("no space left on device", "disk quota exceeded")


def no_space(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it was raised from or while handling, says that a disk is
    full (an OSError, or a wrapper such as Arrow's or Ray's that carries the OS message)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _NO_SPACE_ERRNOS:
            return True
        if any(text in str(current).lower() for text in _NO_SPACE_TEXT):
            return True
        current = current.__cause__ or current.__context__
    return False


def no_space_path(exc: BaseException) -> str | None:
    """The file whose write found the disk full, where the error names it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _NO_SPACE_ERRNOS and current.filename:
            return str(current.filename)
        current = current.__cause__ or current.__context__
    return None
