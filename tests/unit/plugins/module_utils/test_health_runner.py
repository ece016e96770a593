# -*- coding: utf-8 -*-
"""health_runner: summary and Nagios semantics, concurrency, hung probes, wait/poll."""
from __future__ import absolute_import, division, print_function

import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.mcp.platform.plugins.module_utils import health_runner as hr
from ansible_collections.mcp.platform.plugins.module_utils.health.checks import validate_check, validate_checks
from ansible_collections.mcp.platform.plugins.module_utils.health.system import probe_disk


def free_port():
    for _attempt in range(200):
        port = random.randint(31000, 31999)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 31000-31999")


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


class Handler(BaseHTTPRequestHandler):
    hits = {}
    flip_at = 0.0
    lock = threading.Lock()
    inflight = 0
    max_inflight = 0

    def log_message(self, *args):
        pass

    def do_GET(self):
        Handler.hits[self.path] = Handler.hits.get(self.path, 0) + 1
        code = 200
        if self.path.startswith("/slow"):
            with Handler.lock:
                Handler.inflight += 1
                Handler.max_inflight = max(Handler.max_inflight, Handler.inflight)
            time.sleep(0.3)
            with Handler.lock:
                Handler.inflight -= 1
        elif self.path == "/flip":
            code = 200 if time.monotonic() >= Handler.flip_at else 503
        elif self.path == "/down":
            code = 503
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@pytest.fixture(scope="module")
def url():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()


def http(name, url, **kw):
    check = {"name": name, "type": "http", "url": url}
    check.update(kw)
    return check


def test_ten_slow_checks_run_concurrently(url):
    checks = validate_checks([http("slow%d" % i, url + "/slow?%d" % i) for i in range(10)])
    Handler.max_inflight = 0
    start = time.monotonic()
    out = hr.run_checks(checks, 16)
    elapsed = time.monotonic() - start
    assert [r["name"] for r in out] == ["slow%d" % i for i in range(10)]
    assert all(r["status"] == "ok" and r["latency_ms"] >= 290 for r in out)
    # sequential would be >= 3.0 s; allow for a heavily loaded CI machine, but the server must see them overlap
    assert elapsed < 2.0, "10 x 300 ms took %.2fs; the checks did not run concurrently" % elapsed
    assert Handler.max_inflight >= 5, "only %d requests were in flight at once" % Handler.max_inflight


def test_concurrency_limit_is_respected(url):
    checks = validate_checks([http("s%d" % i, url + "/slow?c%d" % i) for i in range(4)])
    Handler.max_inflight = 0
    start = time.monotonic()
    hr.run_checks(checks, 2)
    assert time.monotonic() - start > 0.55
    assert Handler.max_inflight == 2


def test_wait_until_healthy_reruns_only_unhealthy(url):
    Handler.flip_at = time.monotonic() + 0.6
    Handler.hits.pop("/ok-once", None)
    checks = validate_checks([http("flip", url + "/flip"), http("steady", url + "/ok-once")])
    out = hr.run_health(checks, wait=True, wait_timeout=10, interval=0.2)
    assert out["failed"] is False and out["timed_out"] is False
    assert out["status"] == "ok" and out["nagios_code"] == 0 and out["failed_checks"] == []
    assert out["attempts"] >= 2
    assert Handler.hits["/ok-once"] == 1  # healthy checks are not re-run
    assert 0.5 < out["elapsed_s"] < 5


def test_wait_timeout_fails_listing_unhealthy(url):
    checks = validate_checks([http("gateway", url + "/down"), http("api", url + "/ok")])
    out = hr.run_health(checks, wait=True, wait_timeout=0.5, interval=0.1)
    assert out["failed"] is True and out["timed_out"] is True and out["attempts"] >= 2
    assert out["failed_checks"] == ["gateway"]
    assert out["msg"].startswith("timed out after 0.5s waiting for health; 1 of 2 checks stayed unhealthy (fail_on=crit): ")
    assert "gateway: HTTP 503 (expected 200) [crit]" in out["msg"] and "api" not in out["msg"]


def test_fail_on_never_and_warn(tmp_path):
    checks = validate_checks([{"name": "disk", "type": "disk", "path": str(tmp_path), "warn_percent": 0, "crit_percent": 100}])
    out = hr.run_health(checks, fail_on="crit")
    assert out["status"] == "warn" and out["nagios_code"] == 1 and out["failed"] is False
    out = hr.run_health(checks, fail_on="warn", wait=True, wait_timeout=0.3, interval=0.1)
    assert out["failed"] is True and out["timed_out"] is True and out["failed_checks"] == ["disk"]
    out = hr.run_health(checks, fail_on="never", wait=True, wait_timeout=0.3, interval=0.1)
    assert out["failed"] is False and out["timed_out"] is False  # never waits only for crit
    assert out["msg"] == out["summary"]["text"]
