# -*- coding: utf-8 -*-
"""mcp_rollout's refusals through the real `ansible` CLI (``run_module``): bad input named, the secret never shown.

The plan (pure) is in tests/unit; the replacement itself runs against the lab's engine and gateway in
tests/integration (test_rollout_module.py, test_update_rollback.py).
"""

from __future__ import absolute_import, division, print_function

import json

import pytest

GOOD = {"host_label": "mcp-x", "version": "1.1.0", "replicas": 2, "gateway_admin_url": "http://127.0.0.1:1",
        "docker_host": "unix:///nonexistent/podman.sock", "env": {"DATABASE_URL": "postgresql://u:Hunter2Secret@h/db"},
        "services": [{"name": "fs", "image": "r/fs:1.1.0"}]}


@pytest.mark.parametrize("change,expect", [
    ({"replicas": 0}, "replicas must be between 1 and 64, got 0"),
    ({"replicas": 100000}, "replicas must be between 1 and 64, got 100000"),
    ({"drain_grace": -1}, "drain_grace must be between 0 and 86400 seconds"),
    ({"services": []}, "services must name at least one service"),
    ({"services": [{"name": "fs", "image": "a"}, {"name": "fs", "image": "b"}]}, "services names a service twice: fs"),
    ({"services": [{"name": "a/b", "image": "x"}]}, "services[0].name must be a plain service name"),
    ({"gateway_admin_url": "127.0.0.1:8088"}, "gateway_admin_url must be an http(s):// URL"),
    ({"route_timeout": 0}, "route_timeout must be a positive number of seconds"),
    ({"name_template": "{host}-{nope}"}, "name_template only {host}, {service}, {replica} and {version} may be used"),
    ({"volumes": ["/data"]}, "volumes[0] must be source:target[:mode]"),
    ({"version": None}, "version is required (and must not be empty) with mode=replace"),
    ({"services": [{"name": "fs"}]}, "services[0].image is required (or image for every service) with mode=replace"),
    ({"mode": "reboot"}, "value of mode must be one of: replace, restart, stop"),
    ({}, "mcp-x: cannot list containers on unix:///nonexistent/podman.sock"),
])
def test_module_refuses_bad_input_naming_the_option_without_the_secret(run_module, change, expect):
    args = dict(GOOD, **change)
    rc, out = run_module("mcp.platform.mcp_rollout", json.dumps(args))
    assert rc != 0
    assert expect in out, out[-2000:]
    assert "Traceback" not in out
    assert "Hunter2Secret" not in out
