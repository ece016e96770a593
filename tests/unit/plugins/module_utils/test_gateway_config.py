# -*- coding: utf-8 -*-
"""gateway_config: the post-cutover guard's Traefik configuration (pure). Applied to the lab's gateways by
tests/integration/test_update_rollback.py (1.3.0 degrading under load)."""

from __future__ import absolute_import, division, print_function

import json

import pytest

from ansible_collections.mcp.platform.plugins.module_utils import gateway_config as gc


def test_guard_routes_to_the_new_replicas_and_fails_over_to_the_previous():
    text = gc.render_guard("git", ["http://10.0.0.1:31002", "http://10.0.0.1:31001"], ["http://10.0.0.1:30001"], "1s", "1s")
    conf = json.loads(text.split("\n", 1)[1])["http"]
    web, tls = conf["routers"]["guard-git"], conf["routers"]["guard-git-tls"]
    assert web["rule"] == tls["rule"] == "PathPrefix(`/mcp/git`)"
    assert web["entryPoints"] == ["web"] and tls["entryPoints"] == ["websecure"] and tls["tls"] == {}
    # above the Docker provider's routers, below maintenance (which must still win during a guard)
    assert web["priority"] == gc.GUARD_PRIORITY < gc.DEFAULT_PRIORITY
    assert web["middlewares"] == ["git-strip@docker"]
    assert conf["services"]["guard-git"] == {"failover": {"service": "guard-git-next", "fallback": "guard-git-previous"}}
    nxt = conf["services"]["guard-git-next"]["loadBalancer"]
    assert [s["url"] for s in nxt["servers"]] == ["http://10.0.0.1:31001", "http://10.0.0.1:31002"]
    assert nxt["healthCheck"] == {"path": "/health", "interval": "1s", "timeout": "1s"}
    # the previous replicas are not health-checked: they serve whatever the new ones do
    assert conf["services"]["guard-git-previous"] == {"loadBalancer": {"servers": [{"url": "http://10.0.0.1:30001"}]}}
    assert gc.guard_file("/var/lib/mcp/gateway/dynamic", "git") == "/var/lib/mcp/gateway/dynamic/mcp-guard-git.yml"


def test_guard_refuses_a_service_name_that_is_not_one():
    with pytest.raises(ValueError):
        gc.render_guard("git`) || PathPrefix(`/", [], [])


def test_guard_without_new_replicas_routes_to_the_previous_ones_and_parses_back():
    text = gc.render_guard("git", [], ["http://10.0.0.1:30001"])
    conf = json.loads(text.split("\n", 1)[1])["http"]
    assert conf["routers"]["guard-git"]["service"] == "guard-git-previous"
    assert sorted(conf["services"]) == ["guard-git-previous"]
    assert gc.guard_urls(text, "git") == ([], ["http://10.0.0.1:30001"])
    full = gc.render_guard("git", ["http://10.0.0.1:31001"], ["http://10.0.0.1:30001"])
    assert gc.guard_urls(full, "git") == (["http://10.0.0.1:31001"], ["http://10.0.0.1:30001"])
    assert gc.guard_urls("", "git") is None and gc.guard_urls("# x\nnot json", "git") is None
