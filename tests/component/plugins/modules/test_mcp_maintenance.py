# -*- coding: utf-8 -*-
"""mcp_maintenance end to end: the real ``ansible`` CLI runs the module (``run_module_result``) against a real
Traefik with the maintenance responder in front of a backend (``traefik_gateway``); tests/component/conftest.py.
The windows themselves (TTL, bypass, read-only PostgreSQL) are in
tests/component/plugins/module_utils/test_maintenance_windows.py."""
from __future__ import absolute_import, division, print_function

import json
import os

from support.gateway import get, wait_status


def _gateway(gw):
    """The module's gateway options for this Traefik (file provider, its entry points, the responder)."""
    g = gw.gateway()
    return dict(state_dir=gw.state, gateway_dynamic_dir=g["dynamic_dir"], responder_url=g["responder_url"],
                service_provider=g["service_provider"], http_entrypoint=g["http_entrypoint"], tls_entrypoint=g["tls_entrypoint"])


def _files(gw):
    """The two files the module owns: the gateway's maintenance.yml and the recorded window (bytes or None)."""
    out = {}
    for path in (os.path.join(gw.dyn, "maintenance.yml"), os.path.join(gw.state, "maintenance.json")):
        out[path] = None
        if os.path.exists(path):
            with open(path, "rb") as fh:
                out[path] = fh.read()
    return out


def test_enable_twice_serves_503_then_unchanged(run_module_result, traefik_gateway):
    """maintenance.yml runs the enable before every step of a long job: a rerun must leave the window (its since and
    expiry) and the gateway file alone, and clients keep getting the 503. Check mode predicts and touches nothing."""
    gw = traefik_gateway
    args = dict(_gateway(gw), state="enabled", services=["alpha"], known_services=["alpha", "beta"], msg="Upgrading alpha",
                by="tester", retry_after=120, ttl=3600)
    try:
        proc, result = run_module_result("mcp_maintenance", args, "--check")
        assert proc.returncode == 0 and result["changed"] is True and result["gateway_changed"] is True, proc.stdout + proc.stderr
        assert set(_files(gw).values()) == {None}
        assert get(gw.url("alpha"))[0] == 200

        proc, result = run_module_result("mcp_maintenance", args)
        assert proc.returncode == 0 and result["changed"] is True and result["gateway_changed"] is True, proc.stdout + proc.stderr
        assert result["in_maintenance"] == ["alpha"]
        dummy, hdrs, body = wait_status(gw.url("alpha"), 503, 5.0)  # Traefik applies a change within its 2 s throttle
        assert hdrs["Retry-After"] == "120"
        assert json.loads(body)["message"] == "Upgrading alpha"
        assert get(gw.url("beta"))[0] == 200
        written = _files(gw)
        assert None not in written.values()

        proc, again = run_module_result("mcp_maintenance", args)
        assert proc.returncode == 0 and again["changed"] is False and again["gateway_changed"] is False, proc.stdout + proc.stderr
        assert again["in_maintenance"] == ["alpha"]
        assert again["services"]["alpha"]["since"] == result["services"]["alpha"]["since"]
        assert again["services"]["alpha"]["until"] == result["services"]["alpha"]["until"]
        assert _files(gw) == written, "the second run rewrote the window or the gateway file"
        status, hdrs, body = get(gw.url("alpha"))
        assert status == 503 and json.loads(body)["message"] == "Upgrading alpha"
    finally:
        run_module_result("mcp_maintenance", dict(_gateway(gw), state="disabled"))


def test_disable_twice_serves_again_then_unchanged(run_module_result, traefik_gateway):
    """The end of maintenance runs again when a play is rerun: the second disable finds nothing to lift."""
    gw = traefik_gateway
    common = _gateway(gw)
    proc, dummy = run_module_result("mcp_maintenance", dict(common, state="enabled", services=["beta"], msg="Upgrading beta"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    wait_status(gw.url("beta"), 503, 5.0)
    args = dict(common, state="disabled", services=["beta"])

    proc, result = run_module_result("mcp_maintenance", args)
    assert proc.returncode == 0 and result["changed"] is True and result["in_maintenance"] == [], proc.stdout + proc.stderr
    wait_status(gw.url("beta"), 200, 5.0)
    assert not os.path.exists(os.path.join(gw.dyn, "maintenance.yml"))
    written = _files(gw)

    proc, again = run_module_result("mcp_maintenance", args)
    assert proc.returncode == 0 and again["changed"] is False and again["gateway_changed"] is False, proc.stdout + proc.stderr
    assert again["in_maintenance"] == []
    assert _files(gw) == written
    assert get(gw.url("beta"))[0] == 200
