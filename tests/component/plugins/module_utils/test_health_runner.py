# -*- coding: utf-8 -*-
"""health_runner against a real HTTP server (``http_url``, tests/component/conftest.py): checks run concurrently, the
concurrency limit holds, waiting re-runs only the unhealthy checks and times out listing them."""
from __future__ import absolute_import, division, print_function

import time

from support.http_servers import HealthHandler as Handler

from ansible_collections.mcp.platform.plugins.module_utils import health_runner as hr
from ansible_collections.mcp.platform.plugins.module_utils.health.checks import validate_checks


def http(name, url, **kw):
    check = {"name": name, "type": "http", "url": url}
    check.update(kw)
    return check


def test_ten_slow_checks_run_concurrently(http_url):
    checks = validate_checks([http("slow%d" % i, http_url + "/slow?%d" % i) for i in range(10)])
    Handler.max_inflight = 0
    start = time.monotonic()
    out = hr.run_checks(checks, 16)
    elapsed = time.monotonic() - start
    assert [r["name"] for r in out] == ["slow%d" % i for i in range(10)]
    assert all(r["status"] == "ok" and r["latency_ms"] >= 290 for r in out)
    # sequential would be >= 3.0 s; allow for a heavily loaded CI machine, but the server must see them overlap
    assert elapsed < 2.0, "10 x 300 ms took %.2fs; the checks did not run concurrently" % elapsed
    assert Handler.max_inflight >= 5, "only %d requests were in flight at once" % Handler.max_inflight


def test_concurrency_limit_is_respected(http_url):
    checks = validate_checks([http("s%d" % i, http_url + "/slow?c%d" % i) for i in range(4)])
    Handler.max_inflight = 0
    start = time.monotonic()
    hr.run_checks(checks, 2)
    assert time.monotonic() - start > 0.55
    assert Handler.max_inflight == 2


def test_wait_until_healthy_reruns_only_unhealthy(http_url):
    Handler.flip_at = time.monotonic() + 0.6
    Handler.hits.pop("/ok-once", None)
    checks = validate_checks([http("flip", http_url + "/flip"), http("steady", http_url + "/ok-once")])
    out = hr.run_health(checks, wait=True, wait_timeout=10, interval=0.2)
    assert out["failed"] is False and out["timed_out"] is False
    assert out["status"] == "ok" and out["nagios_code"] == 0 and out["failed_checks"] == []
    assert out["attempts"] >= 2
    assert Handler.hits["/ok-once"] == 1  # healthy checks are not re-run
    assert 0.5 < out["elapsed_s"] < 5


def test_wait_timeout_fails_listing_unhealthy(http_url):
    checks = validate_checks([http("gateway", http_url + "/down"), http("api", http_url + "/ok")])
    out = hr.run_health(checks, wait=True, wait_timeout=0.5, interval=0.1)
    assert out["failed"] is True and out["timed_out"] is True and out["attempts"] >= 2
    assert out["failed_checks"] == ["gateway"]
    assert out["msg"].startswith("timed out after 0.5s waiting for health; 1 of 2 checks stayed unhealthy (fail_on=crit): ")
    assert "gateway: HTTP 503 (expected 200) [crit]" in out["msg"] and "api" not in out["msg"]
