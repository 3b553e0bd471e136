"""Local paths as the user types them: ``~`` expanded as a shell would, and the checks of the
paths isosweep writes its output to (``--out``).

A leaf module (standard library and ``isosweep.errors`` only): the store, the CLI, the API and
the report all use it, and Ray workers import the store.
"""

from __future__ import annotations

import os
import stat

from isosweep.errors import UsageError


def expand_home(path: str, what: str) -> str:
    """``path`` with a leading ``~`` or ``~user`` replaced by that home folder, as a shell does;
    any other path or URL (``s3://...``) unchanged. ``what`` names the path in the error
    (``--out``, ``store``).

    Every part of a run must see the same folder: a ``~`` kept literally would be read as a
    folder named ``~`` by some parts and as the home folder by others (fsspec and Ray expand it).
    A ``~user`` of no known user cannot be expanded and is refused, not taken literally."""
    if not path.startswith("~"):
        return path
    expanded = os.path.expanduser(path)
    if expanded.startswith("~"):
        user = path[1:].split("/", 1)[0]
        whose = f"user {user!r} is unknown on this machine" if user else "the home folder is unknown (set HOME)"
        raise UsageError(
            f"{what} {path!r}: {whose}, so '~{user}' cannot be expanded; write ./{path} for a folder of that name"
        )
    return expanded


def inside(path: str, folder: str) -> bool:
    """Whether local ``path`` is ``folder`` or below it, symbolic links resolved."""
    real, base = os.path.realpath(path), os.path.realpath(folder)
    return real == base or real.startswith(base.rstrip("/") + "/")


def not_a_regular_file(path: str) -> str | None:
    """What stands at ``path`` when it is neither absent nor a regular file (``a symbolic link
    (to ...)``, ``a folder``, ``a device or other special file``); None otherwise.

    isosweep writes its output (``--out``) by replacing a file whole, which would replace a link,
    a device node or a pipe with a regular file (and removing a folder is never its call): such a
    path is refused instead, never replaced nor written through."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return f"a symbolic link (to {os.readlink(path)!r})"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a device or other special file"
