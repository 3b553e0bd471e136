"""Checking a Ray cluster address before anything starts: Ray itself retries a wrong address for
minutes, so an unreachable head is told apart from a slow one with a plain TCP connect first."""

from __future__ import annotations

import socket

from isosweep.errors import UsageError

CONNECT_TIMEOUT_S = 5.0


def check_address(address: str | None) -> None:
    """Raise UsageError unless the Ray head at ``address`` (``host:port`` or ``ray://host:port``)
    accepts connections; ``auto`` and ``local`` are left to Ray."""
    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port_text = hostport.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise UsageError(f"--address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379 or ray://10.0.0.5:10001)")
    try:
        with socket.create_connection((host.strip("[]"), int(port_text)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise UsageError(
            f"cannot reach Ray at {address}: {exc.strerror or exc}; is the cluster up "
            "(`ray status` on its head node prints the address)?"
        ) from None
