"""A Ray cluster of several hosts on this one machine: each host is a network namespace with its
own address (a veth pair on a bridge) and its own host name (a UTS namespace), and runs
``ray start`` as a real Ray node would. Only the addresses of these namespaces are used.

Needs root, ``ip`` and ``unshare``; :func:`unavailable` says why a test must skip otherwise.
Everything made is torn down by :meth:`NetnsCluster.close`, also after a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
SUBNET = "10.213.{net}.{host}"
"""Addresses of the test's own hosts: a /24 that exists only inside the namespaces made here."""


def _run(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=timeout)


def unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None where they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    name = f"isoprobe{uuid.uuid4().hex[:6]}"
    probe = _run("ip", "netns", "add", name, check=False)
    if probe.returncode != 0:
        return f"cannot make a network namespace: {probe.stderr.strip()}"
    _run("ip", "netns", "del", name, check=False)
    return None


@dataclass
class Host:
    """One namespace: its name, address and host name."""

    netns: str
    address: str
    hostname: str
    temp_dir: str = ""

    def command(self, *args: str, env: dict[str, str] | None = None) -> list[str]:
        """``args`` run inside this host: its network namespace, a fresh UTS namespace with its host
        name, and ``env`` added to the environment."""
        prefix = [
            "ip",
            "netns",
            "exec",
            self.netns,
            "unshare",
            "--uts",
            "sh",
            "-c",
            f'hostname {self.hostname} && exec "$@"',
            "sh",
        ]
        extra = [f"{k}={v}" for k, v in (env or {}).items()]
        return prefix + (["env", *extra] if extra else []) + list(args)

    def pids(self) -> list[int]:
        out = _run("ip", "netns", "pids", self.netns, check=False).stdout
        return [int(p) for p in out.split()]

    def kill(self) -> None:
        """Every process of this host, killed by PID (as a machine that loses power)."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@dataclass
class NetnsCluster:
    """A bridge in a hub namespace and hosts attached to it (see the module docstring)."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:5])
    net: int = field(default_factory=lambda: 100 + os.getpid() % 100)
    hosts: dict[str, Host] = field(default_factory=dict)
    hub: str = ""
    hub_address: str = ""
    env: dict[str, str] = field(default_factory=dict)
    """Environment that every command run in a host gets (see :meth:`run` and :meth:`start`)."""
    token: str = field(default_factory=lambda: uuid.uuid4().hex + uuid.uuid4().hex)
    """Ray's cluster token (Ray authenticates its RPCs by token): every node and driver gets it."""
    _made: list[str] = field(default_factory=list)
    _procs: list[subprocess.Popen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.hub = f"iso{self.tag}hub"
        self.hub_address = SUBNET.format(net=self.net, host=254)
        self._netns(self.hub)
        self._ip(self.hub, "link", "add", "br0", "type", "bridge")
        self._ip(self.hub, "addr", "add", f"{self.hub_address}/24", "dev", "br0")
        self._ip(self.hub, "link", "set", "br0", "up")

    # -- making ---------------------------------------------------------------------------------
    def _netns(self, name: str) -> None:
        _run("ip", "netns", "add", name)
        self._made.append(name)
        self._ip(name, "link", "set", "lo", "up")

    @staticmethod
    def _ip(netns: str, *args: str) -> None:
        _run("ip", "-n", netns, *args)

    def add_host(self, name: str) -> Host:
        """A new namespace with an address on the bridge and the host name ``name``."""
        index = len(self.hosts) + 1
        host = Host(
            f"iso{self.tag}{name}",
            SUBNET.format(net=self.net, host=index),
            name,
            tempfile.mkdtemp(prefix=f"ray-{name}-", dir="/tmp"),
        )
        self._netns(host.netns)
        outer, inner = f"v{self.tag}{index}h", f"v{self.tag}{index}n"
        _run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        _run("ip", "link", "set", outer, "netns", self.hub)
        _run("ip", "link", "set", inner, "netns", host.netns)
        self._ip(self.hub, "link", "set", outer, "master", "br0")
        self._ip(self.hub, "link", "set", outer, "up")
        self._ip(host.netns, "link", "set", inner, "name", "eth0")
        self._ip(host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        self._ip(host.netns, "link", "set", "eth0", "up")
        self.hosts[name] = host
        return host

    def start(
        self, host: Host, args: Sequence[str], env: dict[str, str] | None = None, log: Path | None = None
    ) -> subprocess.Popen:
        """A long-running process inside ``host`` (ended by :meth:`close`)."""
        out = open(log, "ab") if log is not None else subprocess.DEVNULL
        proc = subprocess.Popen(
            host.command(*args, env={**self.env, **(env or {})}), stdout=out, stderr=subprocess.STDOUT
        )
        self._procs.append(proc)
        return proc

    def run(
        self, host: Host, args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess:
        """A command inside ``host``, waited for."""
        return subprocess.run(
            host.command(*args, env={**self.env, **(env or {})}), capture_output=True, text=True, timeout=timeout
        )

    def wait_port(self, host: Host, address: str, port: int, timeout: float = 60) -> None:
        """Wait until ``address:port`` accepts connections, as seen from ``host``."""
        probe = f"import socket; socket.create_connection(({address!r}, {port}), timeout=1).close()"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.run(host, [str(BIN / "python"), "-c", probe], timeout=30).returncode == 0:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{address}:{port} did not open within {timeout:.0f} s")

    # -- Ray ------------------------------------------------------------------------------------
    def ray_start(
        self,
        host: Host,
        head: Host | None = None,
        num_cpus: int = 1,
        num_gpus: int = 0,
        env: dict[str, str] | None = None,
    ) -> None:
        """``ray start`` on ``host``: the head where ``head`` is None, else a worker joining it.
        ``num_gpus`` are logical GPUs: Ray schedules by them whether or not the host has any."""
        args = [
            str(BIN / "ray"),
            "start",
            f"--node-ip-address={host.address}",
            f"--num-cpus={num_cpus}",
            f"--num-gpus={num_gpus}",
            f"--temp-dir={host.temp_dir}",
            "--disable-usage-stats",
        ]
        if head is None:
            args += ["--head", "--port=6379", "--include-dashboard=false"]
        else:
            args += [f"--address={head.address}:6379"]
        done = self.run(host, args, env={**self.ray_env(), **(env or {})}, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"ray start on {host.hostname} failed:\n{done.stdout}\n{done.stderr}")

    def ray_env(self) -> dict[str, str]:
        """What a Ray process of this cluster (node or driver) needs in its environment."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}

    # -- tearing down ---------------------------------------------------------------------------
    def remove(self, host: Host) -> None:
        """Kill every process of ``host`` and delete its namespace (a host that vanished)."""
        host.kill()
        time.sleep(0.2)
        _run("ip", "netns", "del", host.netns, check=False)
        if host.netns in self._made:
            self._made.remove(host.netns)

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
        for host in list(self.hosts.values()):
            host.kill()
        time.sleep(0.5)
        for name in reversed(self._made):
            for pid in _run("ip", "netns", "pids", name, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            _run("ip", "netns", "del", name, check=False)
        self._made.clear()
        for host in self.hosts.values():
            shutil.rmtree(host.temp_dir, ignore_errors=True)

    def __enter__(self) -> NetnsCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
