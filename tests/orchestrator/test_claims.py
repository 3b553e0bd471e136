"""Claims (isosweep.orchestrator.claims) on a local disk and on a real S3-compatible server: one
holder per key, a dead or expired holder taken over, a released key claimable again."""

from __future__ import annotations

import errno
import json
import os
import time

import pytest

from helpers import write_trial
from isosweep.orchestrator.claims import Claims
from isosweep.store import Store
from isosweep.studies import STUDIES


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path) -> Store:
    if request.param == "local":
        return Store(str(tmp_path / "store"))
    request.getfixturevalue("s3_server")
    return Store(f"s3://isosweep-test/claims-{time.monotonic_ns()}")


def test_one_holder_per_key_and_release(store: Store) -> None:
    a, b = Claims(store), Claims(store)
    assert a.try_claim("k1") and not b.try_claim("k1")
    assert b.try_claim("k2") and not a.try_claim("k2")
    a.release("k1")
    assert b.try_claim("k1")
    a.close()
    b.close()
    assert not store.list_files(f"{store.root}/claims/k1", "") and not store.list_files(f"{store.root}/claims/k2", "")
    assert not store.list_files(f"{store.root}/claims/owners", ""), "the leases go with their workers"


# On S3 each lease write is a request to the server: 8 s.
@pytest.mark.parametrize("store", ["local", pytest.param("s3", marks=pytest.mark.slow)], indirect=True)
def test_one_lease_write_per_beat_however_many_keys(store: Store) -> None:
    """The heartbeat renews one lease file per worker, not one file per held key: a fused bundle
    holds thousands of keys. A claim stays live while its owner's lease is unexpired, long after
    the expiry written into the claim itself, and lapses with the lease."""
    a = Claims(store, lease_s=2.0)  # a beat every 0.5 s
    for i in range(200):
        assert a.try_claim(f"k{i}")
    lease_path = a._lease_path(a.owner)
    first = {i: store.fs.cat_file(a.held[f"k{i}"]) for i in (0, 199)}
    first_lease = store.fs.cat_file(lease_path)
    time.sleep(3.0)  # the claims' own expiry has passed
    assert {i: store.fs.cat_file(a.held[f"k{i}"]) for i in (0, 199)} == first, "claim files are not rewritten"
    assert store.fs.cat_file(lease_path) != first_lease, "the heartbeat rewrote the lease"
    # Liveness is then checked against leases written here, not against the beat's timing: on a
    # machine loaded by other work one write to the object store can take longer than 2 s.
    a._stop.set()
    a._thread.join()
    b = Claims(store)
    a.lease_s = 600.0
    a._renew()  # the lease runs for 10 minutes more: the claims, expired themselves, stay live
    assert not b.try_claim("k0") and not b.try_claim("k199")
    a.lease_s = -1.0
    a._renew()  # the lease lapsed (as when the owner stalls): the keys can be taken over
    assert b.try_claim("k0") and b.try_claim("k199")
    a.close()
    b.close()


def _forge(store: Store, key: str, n: int, **record: object) -> None:
    store.write_bytes(f"{store.root}/claims/{key}/{n}", json.dumps(record).encode())


def test_dead_or_expired_holders_are_taken_over_live_ones_are_not(store: Store) -> None:
    import socket

    host = socket.gethostname()
    _forge(store, "dead", 1, owner="x", host=host, pid=2**22 + 7, start="1", expires=time.time() + 600)
    _forge(store, "expired", 1, owner="x", host="elsewhere", pid=1, start="1", expires=time.time() - 1)
    _forge(store, "live", 1, owner="x", host="elsewhere", pid=1, start="1", expires=time.time() + 600)
    c = Claims(store)
    assert c.try_claim("dead") and c.held["dead"].endswith("/dead/2")
    assert c.try_claim("expired") and c.held["expired"].endswith("/expired/2")
    assert not c.try_claim("live")
    c.close()


def test_a_waiter_counts_a_key_finished_elsewhere_as_done(store: Store) -> None:
    a, b = Claims(store, poll_s=0.05), Claims(store, poll_s=0.05)
    assert a.try_claim("k")
    finished = {"k": False}

    import threading

    def finish() -> None:
        time.sleep(0.3)
        finished["k"] = True
        a.release("k")

    threading.Thread(target=finish).start()
    assert b.wait_and_claim("k", lambda key: finished[key]) is False
    a.close()
    b.close()


def test_a_holder_whose_lease_lapsed_sees_it_before_writing(store: Store) -> None:
    """A stalled holder (its lease expired, as a missed heartbeat would leave it) is taken over;
    it then finds that its claim is no longer the newest, and must not write."""
    a = Claims(store, lease_s=0.2)
    assert a.try_claim("k") and a.still_held("k")
    a._stop.set()  # the heartbeat stops, as in a stalled process
    path = a.held["k"]
    _forge(store, "k", 1, owner=a.owner, host="elsewhere", pid=1, start="1", expires=time.time() - 1)
    time.sleep(0.3)  # and the lease of its owner has lapsed too
    assert path.endswith("/k/1")
    b = Claims(store)
    assert b.try_claim("k") and b.still_held("k")
    assert not a.still_held("k")
    b.close()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        pytest.param(b'{"owner": ', marks=pytest.mark.slow),  # each waits out a lease: 4 s
        pytest.param(b"[1, 2]", marks=pytest.mark.slow),
        pytest.param(b'{"expires": "soon"}', marks=pytest.mark.slow),
    ],
    ids=["empty", "cut-short", "not-a-record", "bad-expiry"],
)
@pytest.mark.parametrize("store", ["local", pytest.param("s3", marks=pytest.mark.slow)], indirect=True)
def test_an_empty_or_damaged_claim_expires_after_one_lease(store: Store, content: bytes) -> None:
    """A claim file left empty or unparsable (a write into a full disk) holds its key for one
    lease from its last write (it may be a claim being written), then counts as expired: a worker
    takes the key over, and its release removes the damaged file too."""
    store.write_bytes(f"{store.root}/claims/k/1", content)
    c = Claims(store, lease_s=3.0)
    assert not c.try_claim("k"), "a claim written a moment ago may still be being written"
    time.sleep(4.0)
    assert c.try_claim("k") and c.held["k"].endswith("/k/2")
    c.release("k")
    assert store.list_files(f"{store.root}/claims/k", "") == []
    c.close()


def test_clear_stale_removes_dead_and_expired_claims_and_leases_only(store: Store) -> None:
    """What a stopped or killed run left (a claim of a dead process, an expired one, an expired
    lease) is removed when a later sweep ends; a live claim and a live lease stay."""
    import socket

    host = socket.gethostname()
    _forge(store, "dead", 1, owner="x", host=host, pid=2**22 + 7, start="1", expires=time.time() + 600)
    _forge(store, "dead", 2, owner="x", host=host, pid=2**22 + 7, start="1", expires=time.time() + 600)
    _forge(store, "expired", 1, owner="x", host="elsewhere", pid=1, start="1", expires=time.time() - 1)
    _forge(store, "live", 1, owner="y", host="elsewhere", pid=1, start="1", expires=time.time() + 600)
    _forge(store, "other", 1, owner="x", host="elsewhere", pid=1, start="1", expires=time.time() - 1)
    store.write_bytes(f"{store.root}/claims/owners/x", json.dumps({"expires": time.time() - 1}).encode())
    store.write_bytes(f"{store.root}/claims/owners/y", json.dumps({"expires": time.time() + 600}).encode())
    assert Claims(store).clear_stale(["dead", "expired", "live"]) == 3
    left = {
        k: [p.rsplit("/", 1)[1] for p in store.list_files(f"{store.root}/claims/{k}", "")]
        for k in ("dead", "expired", "live", "other", "owners")
    }
    assert left == {"dead": [], "expired": [], "live": ["1"], "other": ["1"], "owners": ["y"]}


def test_a_claim_whose_write_finds_the_disk_full_leaves_no_file(tiny_disk) -> None:
    """On a full disk a claim's creation fails with the OS error, and leaves no empty claim file
    that other workers would wait on."""
    from helpers import fill

    store = Store(str(tiny_disk / "store"))
    os.makedirs(f"{store.root}/claims/k")
    fill(tiny_disk)
    c = Claims(store)
    with pytest.raises(OSError) as caught:
        c._create(f"{store.root}/claims/k/1")
    assert caught.value.errno == errno.ENOSPC
    assert os.listdir(f"{store.root}/claims/k") == []


def _elsewhere(store: Store) -> Store:
    """The same store as another process sees it: a file system object of its own (fsspec gives
    every caller in one process the same one, listings cache included)."""
    other = Store(store.url)
    if not store.local:
        import fsspec

        other.fs = fsspec.filesystem(other.fs.protocol[0], skip_instance_cache=True)
    return other


def test_claims_and_trials_written_elsewhere_are_seen_at_once(store: Store) -> None:
    """What another driver wrote after this process first looked is seen at the next look: a
    finished trial counts as complete, a live claim keeps the key. (On S3, a listing kept from the
    first look would show neither, and a worker would train the key again, or retry a claim
    that exists for ever.)"""
    first, second = STUDIES["toy"].configs("smoke")[:2]
    write_trial(store, first)
    assert store.completed_keys() == {first.key}
    elsewhere = _elsewhere(store)
    write_trial(elsewhere, second)
    assert store.completed_keys() == {first.key, second.key}

    c = Claims(store)
    _forge(elsewhere, "k", 1, owner="x", host="elsewhere", pid=1, start="1", expires=time.time() - 1)
    assert c._generations("k") == [1]
    _forge(elsewhere, "k", 2, owner="x", host="elsewhere", pid=1, start="1", expires=time.time() + 600)
    assert not c.try_claim("k"), "the live claim written elsewhere holds the key"
    c.close()


def test_a_key_finished_before_it_was_claimed_is_released_untrained(store: Store) -> None:
    """A worker's list of pending keys is read before it claims them: a key that another driver
    finished (and released) in between is claimed, found complete, released, and not trained."""
    finished, pending = STUDIES["toy"].configs("smoke")[:2]
    c = Claims(store)
    plan = [finished, pending]  # both pending when the worker looked
    write_trial(_elsewhere(store), finished)  # then another driver finished one of them
    units = list(c.units(plan, lambda cfg: cfg.key, lambda members: [members], store.completed_keys))
    assert [[cfg.key for cfg in unit] for unit in units] == [[pending.key]]
    assert list(c.held) == [pending.key]
    assert store.list_files(f"{store.root}/claims/{finished.key}", "") == []
    c.close()
