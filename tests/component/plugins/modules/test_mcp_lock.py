# -*- coding: utf-8 -*-
"""mcp_lock end to end: the real ``ansible`` CLI runs the module (``run_module_result``) on a lock file of its own
(``lockdir``); tests/component/conftest.py. The refusal of a second acquirer is in
tests/component/plugins/module_utils/test_fleet_lock.py."""
from __future__ import absolute_import, division, print_function

import json
import os


def test_acquire_twice_writes_lock_once_then_unchanged(run_module_result, lockdir):
    """The update role acquires at the start of every run: a rerun by the same owner must keep the lock as it is
    (same acquired_at, same expiry), not take it afresh. Check mode predicts the acquire and writes nothing."""
    path = os.path.join(lockdir, "fleet.lock")
    args = {"state": "acquired", "path": path, "owner": "alice@ops1/4711", "operation": "update to 2.4.0", "ttl": 900}

    proc, result = run_module_result("mcp_lock", args, "--check")
    assert proc.returncode == 0 and result["changed"] is True, proc.stdout + proc.stderr
    assert result["msg"] == "would acquire %s" % path
    assert os.listdir(lockdir) == []

    proc, result = run_module_result("mcp_lock", args)
    assert proc.returncode == 0 and result["changed"] is True, proc.stdout + proc.stderr
    with open(path, "rb") as fh:
        written = fh.read()
    on_disk = json.loads(written)
    assert on_disk["owner"] == "alice@ops1/4711" and on_disk["operation"] == "update to 2.4.0" and on_disk["ttl"] == 900
    assert on_disk["expires_ts"] - on_disk["acquired_ts"] == 900
    assert result["lock"]["acquired_at"] == on_disk["acquired_at"] and "token" not in result["lock"]

    proc, again = run_module_result("mcp_lock", args)
    assert proc.returncode == 0 and again["changed"] is False, proc.stdout + proc.stderr
    assert again["msg"] == "already held by alice@ops1/4711"
    assert again["lock"]["acquired_at"] == result["lock"]["acquired_at"]
    assert again["lock"]["expires_at"] == result["lock"]["expires_at"]
    with open(path, "rb") as fh:
        assert fh.read() == written, "the second run rewrote the lock file"
    assert os.listdir(lockdir) == ["fleet.lock"], "no temporary file left behind"


def test_release_twice_removes_lock_then_unchanged(run_module_result, lockdir):
    """The release at the end of a play can run again (a rerun after a failure later on): the second release finds
    no lock and reports nothing changed instead of failing. Check mode keeps the file."""
    path = os.path.join(lockdir, "fleet.lock")
    proc, dummy = run_module_result("mcp_lock", {"state": "acquired", "path": path, "owner": "alice@ops1/4711"})
    assert proc.returncode == 0 and os.path.exists(path), proc.stdout + proc.stderr
    args = {"state": "released", "path": path, "owner": "alice@ops1/4711"}

    proc, result = run_module_result("mcp_lock", args, "--check")
    assert proc.returncode == 0 and result["changed"] is True, proc.stdout + proc.stderr
    assert os.path.exists(path)

    proc, result = run_module_result("mcp_lock", args)
    assert proc.returncode == 0 and result["changed"] is True, proc.stdout + proc.stderr
    assert result["lock"]["owner"] == "alice@ops1/4711"
    assert os.listdir(lockdir) == []

    proc, again = run_module_result("mcp_lock", args)
    assert proc.returncode == 0 and again["changed"] is False, proc.stdout + proc.stderr
    assert again["lock"] == {} and again["msg"] == "%s is not locked" % path
    assert os.listdir(lockdir) == []
