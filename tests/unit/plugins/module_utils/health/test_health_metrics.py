"""gateway_errors: Traefik's Prometheus counters parsed and judged over a window (pure parts)."""

import pytest

from ansible_collections.mcp.platform.plugins.module_utils.health.checks import CheckValidationError, validate_check
from ansible_collections.mcp.platform.plugins.module_utils.health.metrics import answer_counts, samples, window

METRICS = """# HELP traefik_service_requests_total How many HTTP requests processed on a service.
# TYPE traefik_service_requests_total counter
traefik_service_requests_total{code="200",method="GET",protocol="http",service="git@docker"} 950
traefik_service_requests_total{code="503",method="GET",protocol="http",service="git@docker"} 50
traefik_service_requests_total{code="200",method="POST",protocol="http",service="filesystem@docker"} 1e3
traefik_service_requests_total{code="502",method="GET",protocol="http",service="maintenance-responder@file"} 7
traefik_service_request_duration_seconds_count{code="200",service="git@docker"} 950
traefik_open_connections{entrypoint="web"} 3
"""


def test_samples_and_counts_of_the_named_services():
    assert len(samples(METRICS, "traefik_service_requests_total")) == 4
    assert answer_counts(METRICS, ["git@docker", "filesystem@docker"]) == {"requests": 2000.0, "errors": 50.0}
    assert answer_counts(METRICS, ["git"]) == {"requests": 1000.0, "errors": 50.0}          # bare name: any provider
    assert answer_counts(METRICS, ["nope"]) == {"requests": 0.0, "errors": 0.0}
    assert samples('m{a="x\\"y"} 2 1700000000\n', "m") == [({"a": 'x"y'}, 2.0)]


def test_window_since_the_baseline_and_after_a_gateway_restart():
    now = {"requests": 1000.0, "errors": 50.0}
    assert window(now, {"requests": 400.0, "errors": 50.0}) == {"requests": 600.0, "errors": 0.0}
    assert window(now, {"requests": 5000.0, "errors": 0.0}) == now       # counters went down: counted from zero
    assert window(now, {}) == now


def test_validation_names_the_option():
    ok = validate_check({"name": "5xx", "type": "gateway_errors", "url": "http://gw:8088/metrics", "services": "git@docker"})
    assert ok["services"] == ["git@docker"] and ok["max_ratio"] == 0.01 and ok["baseline"] == {}
    with pytest.raises(CheckValidationError, match=r"checks\.max_ratio: must be between 0 and 1"):
        validate_check(dict(ok, max_ratio=2))
    with pytest.raises(CheckValidationError, match=r"checks\.baseline: takes only requests and errors"):
        validate_check(dict(ok, baseline={"requests": 1, "total": 2}))
    with pytest.raises(CheckValidationError, match=r"checks\.services: is required for a check of type gateway_errors"):
        validate_check({"name": "5xx", "type": "gateway_errors", "url": "http://gw:8088/metrics"})
