# -*- coding: utf-8 -*-
"""health_runner: summary and Nagios semantics, hung probes, wait/poll on a local disk check. Concurrency and
waiting against a real HTTP server are in tests/component."""
from __future__ import absolute_import, division, print_function

import time

import pytest

from ansible_collections.mcp.platform.plugins.module_utils import health_runner as hr
from ansible_collections.mcp.platform.plugins.module_utils.health.checks import validate_check, validate_checks
from ansible_collections.mcp.platform.plugins.module_utils.health.system import probe_disk


def res(name, status, reason="r"):
    return {"name": name, "type": "tcp", "status": status, "latency_ms": 1.0, "reason": reason, "details": {}}


# --------------------------------------------------------------------------------------------
# summary / Nagios
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("statuses,worst,code", [
    ([], "ok", 0),
    (["ok", "ok"], "ok", 0),
    (["ok", "unknown"], "unknown", 3),
    (["ok", "warn", "unknown"], "warn", 1),
    (["warn", "crit", "unknown", "ok"], "crit", 2),
])
def test_worst_and_nagios(statuses, worst, code):
    results = [res("c%d" % i, s) for i, s in enumerate(statuses)]
    assert hr.worst_status(results) == worst
    assert hr.NAGIOS_CODES[worst] == code


def test_summarize_counts_and_text():
    results = [res("api", "ok"), res("tls", "warn"), res("pg", "crit"), res("db2", "crit"), res("mongo", "unknown")]
    summary = hr.summarize(results)
    assert {k: summary[k] for k in ("ok", "warn", "crit", "unknown", "total", "status")} == \
        {"ok": 1, "warn": 1, "crit": 2, "unknown": 1, "total": 5, "status": "crit"}
    assert summary["text"] == "CRIT - 5 checks: 1 ok, 1 warn (tls), 2 crit (pg, db2), 1 unknown (mongo)"
    assert "\n" not in summary["text"]


@pytest.mark.parametrize("fail_on,expected", [
    ("crit", ["pg"]),
    ("warn", ["tls", "pg", "mongo"]),
    ("never", []),
])
def test_failing_checks(fail_on, expected):
    results = [res("api", "ok"), res("tls", "warn"), res("pg", "crit"), res("mongo", "unknown")]
    assert [r["name"] for r in hr.failing_checks(results, fail_on)] == expected


def test_failure_message_lists_only_failing():
    results = [res("api", "ok", "HTTP 200"), res("tls", "warn", "expires soon"), res("pg", "crit", "connection refused")]
    msg = hr.failure_message(results, "crit")
    assert msg == "1 of 3 health checks failed (fail_on=crit): pg: connection refused [crit]"
    assert "api" not in msg and "tls" not in msg


# --------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------
def test_run_check_contains_probe_errors_and_masks():
    def boom(check):
        raise RuntimeError("kaboom with postgresql://u:hunter2@h/db")

    def leaky(check):
        return {"status": "crit", "reason": "auth failed\n for %s" % check["password"], "details": {"x": [check["password"]]}}

    check = validate_check({"name": "p", "type": "postgres", "dsn": "host=h", "password": "pw-xyz"}, 0)
    out = hr.run_check(check, {"postgres": boom})
    assert out["status"] == "unknown" and out["reason"] == "probe error: RuntimeError: kaboom with postgresql://u:********@h/db"
    out = hr.run_check(check, {"postgres": leaky})
    assert out["reason"] == "auth failed for ********" and out["details"] == {"x": ["********"]}
    assert set(out) == {"name", "type", "status", "latency_ms", "reason", "details"}
    out = hr.run_check(check, {"postgres": lambda c: None})
    assert out["status"] == "unknown" and out["reason"] == "probe error: returned NoneType instead of a result"


def test_hung_probe_is_abandoned():
    def hang(check):
        time.sleep(5)
        return "not a result"

    checks = [validate_check({"name": "slow", "type": "memory", "timeout": 0.1}, 0),
              validate_check({"name": "fast", "type": "disk", "path": "/", "timeout": 0.1}, 1)]
    start = time.monotonic()
    out = hr.run_checks(checks, 1, {"memory": hang, "disk": probe_disk})
    elapsed = time.monotonic() - start
    assert out[0]["status"] == "crit" and "did not finish within 2.2s" in out[0]["reason"]
    assert out[1]["name"] == "fast" and out[1]["status"] == "ok"  # a fresh worker took the hung one's slot
    assert elapsed < 4


def test_fail_on_never_and_warn(tmp_path):
    checks = validate_checks([{"name": "disk", "type": "disk", "path": str(tmp_path), "warn_percent": 0, "crit_percent": 100}])
    out = hr.run_health(checks, fail_on="crit")
    assert out["status"] == "warn" and out["nagios_code"] == 1 and out["failed"] is False
    out = hr.run_health(checks, fail_on="warn", wait=True, wait_timeout=0.3, interval=0.1)
    assert out["failed"] is True and out["timed_out"] is True and out["failed_checks"] == ["disk"]
    out = hr.run_health(checks, fail_on="never", wait=True, wait_timeout=0.3, interval=0.1)
    assert out["failed"] is False and out["timed_out"] is False  # never waits only for crit
    assert out["msg"] == out["summary"]["text"]
