# -*- coding: utf-8 -*-
"""health.containers: the container and logs probes against an MCP host's engine in the lab (skipped without it)."""
from __future__ import absolute_import, division, print_function

import os

import pytest
from support.health import run
from support.lab import ENGINE_SOCK, MCP_HOST

from ansible_collections.mcp.platform.plugins.module_utils.health import checks
from ansible_collections.mcp.platform.plugins.module_utils.platform import SERVICE_LABEL

LAB_DOCKER_SOCK = ENGINE_SOCK


def _lab_docker():
    if not os.path.exists(LAB_DOCKER_SOCK):
        pytest.skip("lab Docker API %s is not there (make lab-up)" % LAB_DOCKER_SOCK)
    if checks.lib("docker") is None:
        pytest.skip("the docker Python SDK is not installed")
    api = checks.lib("docker").APIClient(base_url="unix://" + LAB_DOCKER_SOCK, timeout=5)
    try:
        api.ping()
    except Exception as exc:  # pylint: disable=broad-except
        pytest.skip("lab Docker API %s does not answer: %s" % (LAB_DOCKER_SOCK, exc))
    return api


def test_container_lab_unknown_service_is_crit():
    _lab_docker()
    res = run({"name": "c", "type": "container", "service": "no-such-service", "docker_host": "unix://" + LAB_DOCKER_SOCK})
    assert res["status"] == "crit" and "0/0 replicas" in res["reason"] and "fewer than min_replicas 1" in res["reason"]
    res = run({"name": "c", "type": "container", "service": "no-such-service", "docker_host": "unix://" + LAB_DOCKER_SOCK,
               "min_replicas": 0})
    assert res["status"] == "ok"


@pytest.mark.parametrize("service", ["filesystem", "git"])
def test_container_lab_service_matches_engine(service):
    """The probe must see exactly the engine's labelled containers, with their real state."""
    api = _lab_docker()
    found = api.containers(all=True, filters={"label": ["%s=%s" % (SERVICE_LABEL, service)]})
    if not found:
        pytest.skip("the lab runs no %s containers yet (make lab-up deploys them)" % service)
    truth = dict((c["Id"][:12], api.inspect_container(c["Id"])) for c in found)
    res = run({"name": "c", "type": "container", "service": service, "docker_host": "unix://" + LAB_DOCKER_SOCK})
    reps = res["details"]["replicas"]
    assert sorted(r["id"] for r in reps) == sorted(truth)
    for rep in reps:
        state = truth[rep["id"]]["State"]
        assert rep["running"] == state["Running"]
        assert rep["restart_count"] == int(truth[rep["id"]].get("RestartCount") or 0)
    ready = [r for r in reps if r["running"] and r["health"] in ("healthy", "none")]
    assert res["status"] == ("crit" if not ready else ("ok" if len(ready) == len(reps) else "warn")), res
    res = run({"name": "c", "type": "container", "service": service, "docker_host": "unix://" + LAB_DOCKER_SOCK,
               "min_replicas": len(reps) + 1})
    assert res["status"] == "crit" and "fewer than min_replicas" in res["reason"]


def test_container_lab_direct_probe_of_every_replica():
    api = _lab_docker()
    found = api.containers(filters={"label": ["%s=filesystem" % SERVICE_LABEL, "io.mcp-platform.host=%s" % MCP_HOST]})
    if not found:
        pytest.skip("the lab runs no filesystem containers on %s yet" % MCP_HOST + " (make lab-up deploys them)")
    res = run({"name": "c", "type": "container", "service": "filesystem", "platform_host": MCP_HOST,
               "docker_host": "unix://" + LAB_DOCKER_SOCK, "probe_path": "/version"})
    running = [r for r in res["details"]["replicas"] if r["running"]]
    assert running and all(r["probe_code"] == 200 and r["probe_url"].endswith("/version") for r in running), res
    res = run({"name": "c", "type": "container", "service": "filesystem", "platform_host": MCP_HOST,
               "docker_host": "unix://" + LAB_DOCKER_SOCK, "probe_path": "/no-such-route"})
    assert res["status"] == "crit" and "answered HTTP 404" in res["reason"], res


def test_logs_lab_counts_real_container_lines():
    api = _lab_docker()
    if not api.containers(filters={"label": ["io.mcp-platform.managed=true"]}):
        pytest.skip("the lab runs no managed containers yet (make lab-up deploys them)")
    res = run({"name": "l", "type": "logs", "docker_host": "unix://" + LAB_DOCKER_SOCK, "platform_host": MCP_HOST,
               "since": 3600, "warn_errors": 0, "crit_errors": 10 ** 6})
    assert res["status"] == "ok", res
    assert res["details"]["containers"] and set(res["details"]["counts"]) == {"error", "warn"}
    assert res["reason"].endswith("across %d containers" % len(res["details"]["containers"]))
