# -*- coding: utf-8 -*-
"""fleet_lock on a real file system (no mocks): a temp folder of its own per test (the ``lockdir`` fixture,
tests/conftest.py), racing acquirers in forked processes. The module through ansible is in tests/component."""

from __future__ import absolute_import, division, print_function

import multiprocessing
import os

import pytest

from ansible_collections.mcp.platform.plugins.module_utils import fleet_lock as fl


def test_acquire_refuse_release(lockdir):
    path = os.path.join(lockdir, "fleet.lock")
    res = fl.acquire(path, "alice@ops1/1", "update to 2.4.0", ttl=600, now=1000.0)
    assert res["changed"] and res["lock"]["owner"] == "alice@ops1/1"
    assert fl.acquire(path, "alice@ops1/1", "update to 2.4.0", ttl=600, now=1010.0)["changed"] is False
    with pytest.raises(fl.LockError) as err:
        fl.acquire(path, "bob@ops2/7", "failover", ttl=600, now=1100.0)
    text = str(err.value)
    for part in ("alice@ops1/1", "update to 2.4.0", "1970-01-01T00:16:40Z", "1970-01-01T00:26:40Z", "500 s left"):
        assert part in text, text
    with pytest.raises(fl.LockError, match="refusing to release"):
        fl.release(path, "bob@ops2/7", now=1100.0)
    assert fl.status(path, now=1100.0)["locked"]
    res = fl.release(path, "alice@ops1/1", now=1200.0)
    assert res["changed"] and not os.path.exists(path)
    assert fl.release(path, "alice@ops1/1")["changed"] is False
    assert os.listdir(lockdir) == [], "no temp or aside files left behind"


def test_expired_lock_taken_over(lockdir):
    path = os.path.join(lockdir, "fleet.lock")
    fl.acquire(path, "alice", "update", ttl=60, now=1000.0)
    with pytest.raises(fl.LockError):
        fl.acquire(path, "bob", "failover", ttl=60, now=1059.0)
    plan = fl.acquire(path, "bob", "failover", ttl=60, now=1061.0, check_mode=True)
    assert plan["changed"] and plan["taken_over"]["owner"] == "alice"
    assert fl.read(path)["owner"] == "alice", "check mode changes nothing"
    res = fl.acquire(path, "bob", "failover", ttl=60, now=1061.0)
    assert res["changed"] and res["taken_over"]["owner"] == "alice" and fl.read(path)["owner"] == "bob"
    st = fl.status(path, now=1062.0)
    assert st["locked"] and st["lock"]["operation"] == "failover"
    assert fl.release(path, "alice", force=True)["changed"]
    assert sorted(os.listdir(lockdir)) == []


def test_same_owner_other_operation_refused(lockdir):
    path = os.path.join(lockdir, "fleet.lock")
    fl.acquire(path, "alice", "update")
    with pytest.raises(fl.LockError, match="another operation"):
        fl.acquire(path, "alice", "failover")


def test_corrupt_lock_is_reported(lockdir):
    path = os.path.join(lockdir, "fleet.lock")
    with open(path, "w") as fh:
        fh.write("{not json")
    with pytest.raises(fl.LockError, match="not a valid lock"):
        fl.acquire(path, "alice", "update")


def _race(path, owner, queue):
    try:
        fl.acquire(path, owner, "race", ttl=30)
        queue.put(owner)
    except fl.LockError:
        queue.put(None)


def test_concurrent_acquirers_one_wins(lockdir):
    path = os.path.join(lockdir, "fleet.lock")
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_race, args=(path, "owner%d" % i, queue)) for i in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(20)
    winners = [w for w in (queue.get(timeout=5) for _p in procs) if w]
    assert len(winners) == 1 and fl.read(path)["owner"] == winners[0]


def test_concurrent_takeover_of_expired_lock_one_wins(lockdir):
    path = os.path.join(lockdir, "fleet.lock")
    fl.acquire(path, "old", "stale", ttl=1, now=1.0)  # expired long ago
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_race, args=(path, "taker%d" % i, queue)) for i in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(20)
    winners = [w for w in (queue.get(timeout=5) for _p in procs) if w]
    assert len(winners) == 1 and fl.read(path)["owner"] == winners[0]
    assert os.listdir(lockdir) == ["fleet.lock"]
