# -*- coding: utf-8 -*-
"""mcp_health end to end: the real `ansible` CLI runs the module (``run_module_result``) against a local server
(``http_url``); tests/component/conftest.py.

The collection is found through the symlink farm tests/conftest.py creates (.build/collections).
"""
from __future__ import absolute_import, division, print_function

import pytest
from support.http_servers import HealthHandler
from support.ports import free_port


@pytest.mark.parametrize("args,msg", [
    ({"checks": [{"name": "a", "type": "http", "url": "ftp://x/"}]}, "checks[0].url: must be a http:// or https:// URL"),
    ({"checks": [{"name": "ok", "type": "memory"}, {"name": "a", "type": "tcp", "host": "h"}]},
     "checks[1].port: is required for a check of type tcp"),
    ({"checks": [{"name": "a", "type": "disk", "path": "/", "warn_percent": 95, "crit_percent": 90}]},
     "checks[0].warn_percent: must be <= crit_percent (90.0), got 95.0"),
    ({"checks": [{"name": "a", "type": "disk", "path": "/", "crit_percent": 150}]}, "checks[0].crit_percent: must be between 0 and 100"),
    ({"checks": [{"name": "a", "type": "ftp"}]}, "value of type must be one of: http, mcp, tcp, tls, postgres, redis, mongodb, container"),
    ({"checks": [{"name": "a", "type": "http", "url": "http://h/", "path": "/"}]}, "checks[0].path: is not valid for a check of type http"),
    ({"checks": [{"name": "a", "type": "memory"}], "concurrency": 0}, "concurrency: must be between 1 and 1024"),
])
def test_bad_input_fails_naming_the_option(run_module_result, args, msg):
    proc, result = run_module_result("mcp_health", args)
    assert proc.returncode != 0
    assert result is not None, proc.stdout + proc.stderr
    assert result["failed"] is True
    assert msg in result["msg"], result["msg"]
    assert "Traceback" not in proc.stdout + proc.stderr


def test_secrets_never_in_verbose_output(run_module_result):
    dead = free_port()
    secrets = ["pgS3cretURL", "kvS3cret", "subOptS3cret", "r3disS3cret", "m0ngoS3cret", "tokS3cret"]
    args = {"fail_on": "crit", "timeout": 1, "checks": [
        {"name": "pg-url", "type": "postgres", "dsn": "postgresql://mcp:pgS3cretURL@127.0.0.1:%d/mcp_production" % dead},
        {"name": "pg-kv", "type": "postgres", "dsn": "host=127.0.0.1 port=%d user=mcp password=kvS3cret dbname=x" % dead},
        {"name": "pg-opt", "type": "postgres", "dsn": "postgresql://mcp@127.0.0.1:%d/db" % dead, "password": "subOptS3cret"},
        {"name": "redis", "type": "redis", "url": "redis://:r3disS3cret@127.0.0.1:%d/0" % dead},
        {"name": "mongo", "type": "mongodb", "uri": "mongodb://mcp:m0ngoS3cret@127.0.0.1:%d/?directConnection=true" % dead},
        {"name": "api", "type": "http", "url": "http://127.0.0.1:%d/" % dead, "headers": {"Authorization": "Bearer tokS3cret"}},
    ]}
    proc, result = run_module_result("mcp_health", args, "-vvv")
    text = proc.stdout + proc.stderr
    for secret in secrets:
        assert secret not in text, "%s leaked in -vvv output" % secret
    assert result["failed"] is True and proc.returncode == 2
    by_name = dict((c["name"], c) for c in result["checks"])
    assert by_name["pg-url"]["details"]["dsn"] == "postgresql://mcp:********@127.0.0.1:%d/mcp_production" % dead
    assert by_name["pg-kv"]["details"]["dsn"] == "host=127.0.0.1 port=%d user=mcp password=******** dbname=x" % dead
    assert by_name["pg-opt"]["details"]["dsn"] == "postgresql://mcp@127.0.0.1:%d/db" % dead  # no password: shown as is
    assert by_name["redis"]["details"]["url"] == "redis://:********@127.0.0.1:%d/0" % dead
    assert "pg-url: postgres mcp@127.0.0.1:%d/mcp_production: cannot connect" % dead in result["msg"]


def test_check_mode_report_and_failure(run_module_result, http_url):
    checks = [{"name": "up", "type": "http", "url": http_url + "/"},
              {"name": "down", "type": "http", "url": http_url + "/down"},
              {"name": "mem", "type": "memory", "warn_percent": 100, "crit_percent": 100}]
    args = {"fail_on": "never", "checks": checks}
    proc, result = run_module_result("mcp_health", args, "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result["changed"] is False and result["status"] == "crit" and result["nagios_code"] == 2
    assert result["failed_checks"] == [] and result["summary"]["crit"] == 1 and result["summary"]["ok"] == 2
    assert [c["name"] for c in result["checks"]] == ["up", "down", "mem"]

    args["fail_on"] = "crit"
    proc, result = run_module_result("mcp_health", args)
    assert proc.returncode == 2 and result["failed"] is True and result["changed"] is False
    assert result["msg"] == "1 of 3 health checks failed (fail_on=crit): down: HTTP 503 (expected 200) [crit]"
    assert result["failed_checks"] == ["down"]


def _report(result):
    """The result without what only the clock changes (latencies, elapsed time)."""
    out = dict((k, v) for k, v in result.items() if k not in ("elapsed_s", "invocation"))
    out["checks"] = [dict((k, v) for k, v in c.items() if k != "latency_ms") for c in result["checks"]]
    return out


def test_run_twice_changes_nothing_same_report(run_module_result, http_url):
    """The daily check and every rollout gate run mcp_health again and again: it only probes (one GET per HTTP check
    and run), never reports a change, and the same services give the same report, in check mode too."""
    port = int(http_url.rsplit(":", 1)[1])
    args = {"fail_on": "never", "checks": [
        {"name": "api", "type": "http", "url": http_url + "/health"},
        {"name": "maint", "type": "http", "url": http_url + "/down"},
        {"name": "port", "type": "tcp", "host": "127.0.0.1", "port": port}]}
    reports = []
    for extra in ((), (), ("--check",)):
        hits = HealthHandler.hits.get("/health", 0)
        proc, result = run_module_result("mcp_health", args, *extra)
        assert proc.returncode == 0 and result["changed"] is False, proc.stdout + proc.stderr
        assert HealthHandler.hits["/health"] == hits + 1
        reports.append(_report(result))
    assert [(c["name"], c["status"], c["reason"]) for c in reports[0]["checks"]] == [
        ("api", "ok", "HTTP 200"), ("maint", "crit", "HTTP 503 (expected 200)"), ("port", "ok", "127.0.0.1:%d accepts connections" % port)]
    assert reports[0]["summary"]["text"] == "CRIT - 3 checks: 2 ok, 0 warn, 1 crit (maint), 0 unknown"
    assert reports[1] == reports[0], "a second run reported differently"
    assert reports[2] == reports[0], "check mode reported differently"
