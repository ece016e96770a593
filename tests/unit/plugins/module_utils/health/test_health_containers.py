# -*- coding: utf-8 -*-
"""health.containers: the container probe when the engine's socket is not there. Against the lab's
Docker-compatible API: tests/component."""
from __future__ import absolute_import, division, print_function

from support.health import run


def test_container_api_unreachable(tmp_path):
    res = run({"name": "c", "type": "container", "service": "filesystem", "docker_host": "unix://%s" % (tmp_path / "none.sock")})
    assert res["status"] == "crit" and "Docker API error" in res["reason"]
