# -*- coding: utf-8 -*-
"""health.system: the disk and memory probes against this machine."""
from __future__ import absolute_import, division, print_function

import os

import pytest
from support.health import run

from ansible_collections.mcp.platform.plugins.module_utils.health import system


def test_disk(tmp_path):
    res = run({"name": "d", "type": "disk", "path": str(tmp_path), "warn_percent": 1, "crit_percent": 1})
    assert res["status"] == "crit" and "crit_percent 1" in res["reason"]
    res = run({"name": "d", "type": "disk", "path": str(tmp_path), "warn_percent": 100, "crit_percent": 100})
    assert res["status"] == "ok"
    assert 0 < res["details"]["used_percent"] < 100 and res["details"]["total_bytes"] > 0
    res = run({"name": "d", "type": "disk", "path": str(tmp_path / "missing")})
    assert res["status"] == "crit" and "No such file" in res["reason"]


@pytest.mark.skipif(not os.path.exists("/proc/meminfo"), reason="no /proc/meminfo on this platform")
def test_memory():
    res = run({"name": "m", "type": "memory", "warn_percent": 0, "crit_percent": 100})
    assert res["status"] == "warn" and 0 < res["details"]["used_percent"] < 100
    assert run({"name": "m", "type": "memory", "warn_percent": 100, "crit_percent": 100})["status"] == "ok"
    assert run({"name": "m", "type": "memory", "warn_percent": 0, "crit_percent": 0})["status"] == "crit"


def test_read_meminfo_without_memavailable(tmp_path):
    path = tmp_path / "meminfo"
    path.write_text("MemTotal:       1000 kB\nMemFree:         100 kB\nBuffers:  50 kB\nCached:  50 kB\nHugePages_Total: 0\n")
    info = system.read_meminfo(str(path))
    assert info["MemTotal"] == 1024000 and "MemAvailable" not in info and info["HugePages_Total"] == 0
