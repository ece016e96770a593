# -*- coding: utf-8 -*-
"""maintenance + gateway_config: pure logic on temp folders (no gateway, no database). The real Traefik, responder,
PostgreSQL read-only mode and the module through ansible are in tests/component."""

from __future__ import absolute_import, division, print_function

import json
import os
import shutil
import tempfile

import pytest
from support.gateway import GW, tmpdirs

from ansible_collections.mcp.platform.plugins.module_utils import gateway_config
from ansible_collections.mcp.platform.plugins.module_utils import maintenance as mt

# ----------------------------------------------------------------------------- pure logic


def test_render_routes_and_bypass():
    now = 1000.0
    state = mt.empty_state()
    state["gateway"].update(GW, dynamic_dir="/x", responder_url="http://127.0.0.1:1")
    state["services"]["alpha"] = mt.build_entry(None, "down", None, "me", 60, None, None, ["10.0.0.0/8"],
                                                {"name": "X-Ops", "value": "s3"}, now)
    state["services"]["postgres"] = mt.build_entry(None, "down", None, "me", 60, None, None, [], None, now)
    cfg = mt.render(state, now)["http"]
    r = cfg["routers"]
    assert set(r) == {"maintenance-alpha", "maintenance-alpha-tls", "maintenance-alpha-bypass", "maintenance-alpha-bypass-tls"}
    assert r["maintenance-alpha"]["rule"] == "PathPrefix(`/mcp/alpha`)" and r["maintenance-alpha"]["priority"] == 10000
    assert r["maintenance-alpha"]["service"] == "maintenance-responder"
    assert r["maintenance-alpha-tls"]["entryPoints"] == ["websecure"] and r["maintenance-alpha-tls"]["tls"] == {}
    b = r["maintenance-alpha-bypass"]
    assert b["rule"] == "PathPrefix(`/mcp/alpha`) && (ClientIP(`10.0.0.0/8`) || Header(`X-Ops`, `s3`))"
    assert b["service"] == "alpha@file" and b["middlewares"] == ["alpha-strip@file"] and b["priority"] == 20000
    assert cfg["middlewares"]["maintenance-alpha-tag"]["headers"]["customRequestHeaders"] == {mt.SERVICE_HEADER: "alpha"}
    assert cfg["services"]["maintenance-responder"]["loadBalancer"]["servers"] == [{"url": "http://127.0.0.1:1"}]


def test_enable_idempotent_ttl_not_extended_and_check_mode():
    root, state_dir, dyn = tmpdirs()
    try:
        kw = dict(services=["alpha"], known_services=["alpha", "beta"], message="m", by="me", ttl=600,
                  gateway=dict(GW, dynamic_dir=dyn))
        res = mt.manage(state_dir, "enabled", check_mode=True, now=1000.0, **kw)
        assert res["changed"] and not os.path.exists(os.path.join(dyn, "maintenance.yml"))
        assert not os.path.exists(os.path.join(state_dir, "maintenance.json"))
        res = mt.manage(state_dir, "enabled", now=1000.0, **kw)
        assert res["changed"] and res["in_maintenance"] == ["alpha"] and res["gateway_changed"]
        text = open(os.path.join(dyn, "maintenance.yml")).read()
        res = mt.manage(state_dir, "enabled", now=1100.0, **kw)
        assert not res["changed"], "same message and ttl: nothing changes, ttl counts from since"
        assert res["services"]["alpha"]["until"] == mt.iso(1600.0)
        assert open(os.path.join(dyn, "maintenance.yml")).read() == text
        kw2 = dict(kw)
        kw2["message"] = "new text"
        res = mt.manage(state_dir, "enabled", now=1200.0, **kw2)
        assert res["changed"] and res["before"]["alpha"]["message"] == "m" and res["after"]["alpha"]["message"] == "new text"
        assert res["services"]["alpha"]["since"] == mt.iso(1000.0), "since kept while the window stays on"
        st = mt.manage(state_dir, "status", now=1300.0)
        assert st["in_maintenance"] == ["alpha"] and st["services"]["alpha"]["by"] == "me"
        assert st["services"]["alpha"]["expires_in"] == 300
        # reconcile after expiry drops the entry and removes the gateway file
        rec = mt.reconcile(state_dir, now=1700.0)
        assert rec["changed"] and rec["expired"] == ["alpha"]
        assert not os.path.exists(os.path.join(dyn, "maintenance.yml"))
        res = mt.manage(state_dir, "disabled", now=1800.0, gateway=dict(GW, dynamic_dir=dyn))
        assert not res["changed"]
    finally:
        shutil.rmtree(root)


def test_unknown_service_lists_known_ones():
    root, state_dir, dyn = tmpdirs()
    try:
        with pytest.raises(mt.MaintenanceError) as err:
            mt.manage(state_dir, "enabled", services=["gamma"], known_services=["alpha", "beta"], message="m",
                      gateway=dict(GW, dynamic_dir=dyn))
        assert "gamma" in str(err.value) and "alpha, beta" in str(err.value)
        with pytest.raises(mt.MaintenanceError, match="postgres_dsn"):
            mt.manage(state_dir, "enabled", services=["postgres"], message="m", gateway=dict(GW, dynamic_dir=dyn))
        with pytest.raises(mt.MaintenanceError, match="past"):
            mt.manage(state_dir, "enabled", services=["alpha"], message="m", until="2001-01-01T00:00:00Z",
                      gateway=dict(GW, dynamic_dir=dyn))
    finally:
        shutil.rmtree(root)


def test_header_value_never_in_results():
    root, state_dir, dyn = tmpdirs()
    try:
        res = mt.manage(state_dir, "enabled", services=["alpha"], message="m", bypass_header={"name": "X-Ops", "value": "VerySecretV"},
                        gateway=dict(GW, dynamic_dir=dyn))
        assert "VerySecretV" not in json.dumps(res)
        assert oct(os.stat(os.path.join(state_dir, "maintenance.json")).st_mode & 0o777) == "0o600"
    finally:
        shutil.rmtree(root)


def test_gateway_config_atomic_write_and_remove():
    root = tempfile.mkdtemp()
    try:
        p = os.path.join(root, "x.yml")
        assert gateway_config.write_file(p, "a: 1\n")
        assert not gateway_config.write_file(p, "a: 1\n")
        assert gateway_config.write_file(p, None) and not os.path.exists(p)
        assert not gateway_config.write_file(p, None)
        assert [f for f in os.listdir(root) if f.endswith(".tmp")] == []
    finally:
        shutil.rmtree(root)


def test_gateway_file_is_private_and_written_before_the_state():
    """The derived file holds the bypass header value: 0600 like the state. A gateway folder that is gone fails the
    enable before the state says "in maintenance" (nothing would answer 503)."""
    root, state_dir, dyn = tmpdirs()
    try:
        kw = dict(services=["alpha"], known_services=["alpha"], message="m", by="me", ttl=600,
                  bypass_header={"name": "X-Ops", "value": "s3cret"}, gateway=dict(GW, dynamic_dir=dyn))
        mt.manage(state_dir, "enabled", now=1000.0, **kw)
        path = os.path.join(dyn, "maintenance.yml")
        assert os.stat(path).st_mode & 0o777 == 0o600
        os.chmod(path, 0o644)
        res = mt.manage(state_dir, "enabled", now=1001.0, **kw)
        assert res["changed"] and res["gateway_changed"] and not res["state_changed"], "a widened mode is a change"
        assert os.stat(path).st_mode & 0o777 == 0o600
        mt.manage(state_dir, "disabled", now=1002.0, **kw)
        shutil.rmtree(dyn)
        with pytest.raises(mt.MaintenanceError, match="does not exist"):
            mt.manage(state_dir, "enabled", now=1003.0, **kw)
        assert mt.active(mt.load_state(state_dir), 1003.0) == {}, "no window recorded while no gateway file serves it"
    finally:
        shutil.rmtree(root)
