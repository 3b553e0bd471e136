"""Claims: at most one driver trains a trial key at a time, so two drivers on one store and sweep
neither train a trial twice nor leave one whose tables come from two runs.

A worker that is about to train a key claims it by creating ``<store>/claims/<key>/<n>`` with an
exclusive create (``open(..., "x")`` on a local or shared disk; a conditional PUT,
``If-None-Match: *``, on S3), where ``n`` is one more than the highest claim there: of two
workers that race for the same ``n``, exactly one creates it. The claim names its owner (a worker
process), host, process and a first expiry time; the owner's lease,
``<store>/claims/owners/<owner>``, holds its latest expiry, which one heartbeat thread per worker
pushes forward every ``LEASE_S / 4`` seconds while it trains: one write per beat however many
keys the worker holds (a fused bundle holds thousands). Another worker that meets a live claim
does not train that key: it trains its other keys first, then waits (holding no claim, so two
drivers never wait on each other) until the key is complete in the store, or until the claim's
lease has expired or its process is gone (same host): then it claims ``n + 1`` and trains the key
itself. A key once claimed is looked up in the store again, and released untrained if another
driver finished it after this worker's first look (its claim was then already removed). The
owner removes its claim after the key's ``trials`` file is written. Every listing here (claims,
finished trials) is read from the store, not from a listings cache (``Store.list_files``).

Guarantee: while the owner's heartbeat runs, no other driver trains the key. A key is trained
twice only when its owner stalls for longer than ``LEASE_S`` without dying; the stalled owner
then sees, right before it writes, that its claim is no longer the newest, and drops its result,
so only one run writes the key's tables (unless the taker trains and writes the whole trial in the
moment between that check and the stalled owner's writes). Cost: one small file per trained key
(created and removed), a listing of the key's claim folder before training it and before writing
it, one look at the store's trials per unit claimed, one lease file per worker rewritten every ``LEASE_S / 4`` seconds, and for a killed driver's
keys a wait of up to ``LEASE_S`` (none on the same host, where the dead process is seen).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import timezone
from typing import TypeVar

from isosweep.store import Store

CLAIMS = "claims"
OWNERS = "owners"
"""Folder of the workers' leases inside ``claims/`` (no trial key is named so: keys are hex)."""
LEASE_S = 60.0
"""How long a claim stays valid without its heartbeat."""
POLL_S = 1.0
"""How often a waiting worker looks at a claim it waits for."""

T = TypeVar("T")


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux), which tells a reused pid from the original."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _expiry(record: dict | None) -> float | None:
    """The expiry time a claim or lease record holds; None where there is no record, or it holds
    none that reads as a number (being written, or damaged: the file's age then decides)."""
    try:
        return float(record["expires"]) if record else None
    except (KeyError, TypeError, ValueError):
        return None


class Claims:
    """The claims of one worker process (one Ray trial) on a store."""

    def __init__(self, store: Store, lease_s: float = LEASE_S, poll_s: float = POLL_S):
        self.store = Store(store.url)  # its own: no commit hook of the trial writer applies to claims
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.owner = uuid.uuid4().hex
        self.held: dict[str, str] = {}
        """Key -> path of the claim this worker holds."""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- files -------------------------------------------------------------------------------
    def _folder(self, key: str) -> str:
        return f"{self.store.root}/{CLAIMS}/{key}"

    def _lease_path(self, owner: str) -> str:
        return f"{self.store.root}/{CLAIMS}/{OWNERS}/{owner}"

    def _record(self) -> bytes:
        return json.dumps(
            {
                "owner": self.owner,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "start": _process_start(os.getpid()),
                "expires": time.time() + self.lease_s,
            }
        ).encode()

    def _generations(self, key: str) -> list[int]:
        names = [os.path.basename(p) for p in self.store.list_files(self._folder(key), "")]
        return sorted(int(n) for n in names if n.isdigit())

    def _create(self, path: str) -> bool:
        """Create ``path`` with this worker's record unless it exists; whether it was created."""
        data = self._record()
        if self.store.local:
            while True:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                try:
                    f = open(path, "xb")
                except FileExistsError:
                    return False
                except FileNotFoundError:
                    continue  # the key's folder was removed by a release meanwhile: make it again
                try:
                    with f:
                        f.write(data)
                except BaseException:
                    # A failed write (a full disk) must not leave an empty claim for others to
                    # wait on: remove it (where even that fails, it expires after one lease).
                    try:
                        os.remove(path)
                    except OSError:
                        pass
                    raise
                return True
        try:
            self.store.fs.pipe_file(path, data, mode="create")
            return True
        except FileExistsError:
            return False

    def _read(self, path: str) -> dict | None:
        """The JSON record at ``path``; None where there is none; {} where it is empty or
        unreadable: being written (an object store shows whole objects; a disk may not yet), or
        left so by a write that failed (a full disk)."""
        try:
            with self.store.fs.open(path, "rb") as f:
                record = json.loads(f.read())
        except FileNotFoundError:
            return None
        except (ValueError, OSError):
            return {}
        return record if isinstance(record, dict) else {}

    def _changed_within_lease(self, path: str) -> bool:
        """Whether the file at ``path`` was written less than one lease ago (by its modification
        time, which local disks and object stores both keep)."""
        try:
            modified = self.store.fs.modified(path)
        except FileNotFoundError:
            return False
        except Exception:  # a file system that keeps no time: count it as just written
            return True
        if modified.tzinfo is None:  # fsspec's local file system gives UTC without a zone
            modified = modified.replace(tzinfo=timezone.utc)
        return time.time() - modified.timestamp() < self.lease_s

    def _alive(self, path: str) -> bool:
        """Whether the claim at ``path`` still holds: its owner's lease (or, where the owner wrote
        none, the claim's own expiry) unexpired, and (same host) its process running."""
        record = self._read(path)
        if record is None:
            return False
        expires = _expiry(record)
        if expires is None:
            # Being written (for a moment), or empty or damaged for good: live for one lease from
            # its last write, then expired, so that no such file holds its key for ever.
            return self._changed_within_lease(path)
        if record.get("owner"):
            # A damaged lease extends nothing: the claim's own expiry holds.
            lease = _expiry(self._read(self._lease_path(str(record["owner"]))))
            expires = max(expires, lease if lease is not None else expires)
        if expires < time.time():
            return False
        if record.get("host") == socket.gethostname():
            try:
                return record.get("start") is not None and _process_start(int(record["pid"])) == record["start"]
            except (KeyError, TypeError, ValueError):
                return True  # no process to look at: the expiry above decides
        return True

    # -- claiming ----------------------------------------------------------------------------
    def try_claim(self, key: str) -> bool:
        """Claim ``key`` unless a live claim of another worker holds it; whether it is now ours."""
        if key in self.held:
            return True
        while True:
            generations = self._generations(key)
            if generations and self._alive(f"{self._folder(key)}/{generations[-1]}"):
                return False
            path = f"{self._folder(key)}/{(generations[-1] + 1) if generations else 1}"
            self._start_heartbeat()  # the lease exists before any claim that points at it
            if self._create(path):
                with self._lock:
                    self.held[key] = path
                return True
            # Another worker created that generation first: look again (it is live now).

    def wait_and_claim(self, key: str, done: Callable[[str], bool]) -> bool:
        """Wait until ``key`` is done (False) or can be claimed (True)."""
        while True:
            if done(key):
                return False
            if self.try_claim(key):
                if done(key):  # finished between the two looks: nothing to train
                    self.release(key)
                    return False
                return True
            time.sleep(self.poll_s)

    def units(
        self,
        pending: Sequence[T],
        key: Callable[[T], str],
        group: Callable[[list[T]], list[list[T]]],
        complete: Callable[[list[str]], set[str]],
    ) -> Iterator[list[T]]:
        """The units to train of ``pending`` (grouped by ``group``): first those of the members
        claimed at once, then, one by one, each member that another worker held, once it was
        neither finished by that worker nor still claimed by it. A member finished elsewhere is
        left out. ``complete(keys)`` reads, from the store, which of ``keys`` are complete."""
        claimed = [m for m in pending if self.try_claim(key(m))]
        # ``pending`` was read before these claims: another driver may have finished a member in
        # between (and released its claim, so the claim was free). Once held, a key's state can
        # no longer change under this worker, so one look now settles it.
        finished = complete([key(m) for m in claimed]) if claimed else set()
        for m in claimed:
            if key(m) in finished:
                self.release(key(m))
        claimed = [m for m in claimed if key(m) not in finished]
        yield from group(claimed)
        for m in pending:
            if (
                m not in claimed
                and key(m) not in finished
                and self.wait_and_claim(key(m), lambda k: k in complete([k]))
            ):
                yield [m]

    def still_held(self, key: str) -> bool:
        """Whether this worker's claim on ``key`` is still the key's newest: false once another
        worker took the key over after this one's lease lapsed (it stalled for ``lease_s``).
        Checked right before the key's rows are written, so that the two runs never both write."""
        path = self.held.get(key)
        if path is None:
            return False
        generations = self._generations(key)
        return bool(generations) and f"{self._folder(key)}/{generations[-1]}" == path

    def release(self, key: str) -> None:
        """Give up the claim on ``key`` (after its trials file is written, or on failure)."""
        with self._lock:
            path = self.held.pop(key, None)
        if path is not None:
            # The claims older than this one were dead or expired when it was made (a stopped or
            # killed run's): they go with it, so that none outlives the run that finished the key.
            # Their names are known (1 .. this one's), so this costs no listing.
            generation = int(os.path.basename(path))
            for stale in [f"{self._folder(key)}/{n}" for n in range(1, generation)] + [path]:
                try:
                    self.store.fs.rm_file(stale)
                except FileNotFoundError:
                    pass
            if self.store.local:
                try:  # the key's folder, when no other claim is in it (object stores have no folders)
                    os.rmdir(os.path.dirname(path))
                except OSError:
                    pass

    def clear_stale(self, keys: Iterable[str] | None = None) -> int:
        """Remove the claims of ``keys`` (of every key where None) whose newest claim is dead or expired (a stopped or killed
        run's, on keys now complete or never taken up again), and every expired lease; how many
        claim files went. One listing of the claims folder, then only the keys found there."""
        wanted = set(keys) if keys is not None else None
        removed = 0
        folders = [
            p
            for p in self.store.list_folders(f"{self.store.root}/{CLAIMS}")
            if os.path.basename(p) != OWNERS and (wanted is None or os.path.basename(p) in wanted)
        ]
        for folder in folders:
            key = os.path.basename(folder)
            generations = self._generations(key)
            if not generations or self._alive(f"{folder}/{generations[-1]}"):
                continue
            for n in generations:
                try:
                    self.store.fs.rm_file(f"{folder}/{n}")
                    removed += 1
                except FileNotFoundError:
                    pass
            if self.store.local:
                try:
                    os.rmdir(folder)
                except OSError:
                    pass
        for lease in self.store.list_files(f"{self.store.root}/{CLAIMS}/{OWNERS}", ""):
            expires = _expiry(self._read(lease))
            if expires < time.time() if expires is not None else not self._changed_within_lease(lease):
                try:
                    self.store.fs.rm_file(lease)
                except FileNotFoundError:
                    pass
        return removed

    def close(self, keys: Iterable[str] | None = None) -> None:
        """Release every claim still held, stop the heartbeat and remove the lease."""
        for k in list(keys if keys is not None else self.held):
            self.release(k)
        self._stop.set()
        if self._thread is not None:
            try:
                self.store.fs.rm_file(self._lease_path(self.owner))
            except FileNotFoundError:
                pass

    # -- heartbeat ---------------------------------------------------------------------------
    def _renew(self) -> None:
        # Only the owner writes its lease, so a plain (atomic) overwrite is safe.
        self.store.write_bytes(self._lease_path(self.owner), self._record())

    def _start_heartbeat(self) -> None:
        if self._thread is None:
            self._renew()
            self._thread = threading.Thread(target=self._beat, name="isosweep-claims", daemon=True)
            self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            try:
                self._renew()
            except Exception:  # a missed beat is retried at the next; the lease covers several
                pass
