# -*- coding: utf-8 -*-
"""gateway_errors against a local server that answers Traefik's counters (``http_url``, tests/component/conftest.py)."""
from __future__ import absolute_import, division, print_function

from support.health import run
from support.http_servers import HealthHandler
from support.ports import free_port


def test_a_window_of_5xx_answers_breaches_the_limit_and_a_quiet_one_does_not(http_url):
    check = {"name": "5xx", "type": "gateway_errors", "url": http_url + "/metrics", "services": ["git@docker"]}
    HealthHandler.metrics_ok, HealthHandler.metrics_5xx = 1000, 5
    before = run(check)
    assert before["status"] == "ok", before                    # 5 of 1005 since the gateway started: under 1 %
    base = {"requests": before["details"]["requests"], "errors": before["details"]["errors"]}
    HealthHandler.metrics_ok, HealthHandler.metrics_5xx = 1100, 25
    after = run(dict(check, baseline=base))
    assert after["status"] == "crit", after
    assert after["details"]["window_requests"] == 120 and after["details"]["window_errors"] == 20
    assert after["reason"] == "20 of 120 answers 5xx since the baseline (limit 1.00%)"
    HealthHandler.metrics_ok = 5000
    assert run(dict(check, baseline={"requests": 1125, "errors": 25}))["status"] == "ok"


def test_an_unreachable_gateway_is_crit():
    res = run({"name": "5xx", "type": "gateway_errors", "url": "http://127.0.0.1:%d/metrics" % free_port(),
               "services": ["git@docker"], "timeout": 2})
    assert res["status"] == "crit" and "GET http://127.0.0.1" in res["reason"], res
