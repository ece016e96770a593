# -*- coding: utf-8 -*-
"""health.datastores: the postgres and mongodb probes where nothing listens (refused, masked), without their
driver, and with either PostgreSQL driver. Against real servers (redis-server, the lab's PostgreSQL pair, MongoDB):
tests/component."""
from __future__ import absolute_import, division, print_function

import time

import pytest
from support.health import run, use_driver
from support.ports import free_port

from ansible_collections.mcp.platform.plugins.module_utils.health import checks


# --------------------------------------------------------------------------------------------
# postgres, mongodb (nothing listening / no driver)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_postgres_refused_masks_password(monkeypatch, driver):
    use_driver(monkeypatch, driver)  # psycopg: exercise the psycopg 3 fallback
    dsn = "postgresql://mcp:pg-S3cret@127.0.0.1:%d/mcp_production" % free_port()
    res = run({"name": "p", "type": "postgres", "dsn": dsn})
    assert res["status"] == "crit" and "cannot connect" in res["reason"]
    assert res["details"]["dsn"] == "postgresql://mcp:********@127.0.0.1:%s/mcp_production" % dsn.split(":")[3].split("/")[0]
    assert "pg-S3cret" not in repr(res)


def test_postgres_without_driver(monkeypatch):
    use_driver(monkeypatch, None)
    res = run({"name": "p", "type": "postgres", "dsn": "host=127.0.0.1 password=pw9 dbname=x"})
    assert res["status"] == "unknown" and "neither psycopg2 nor psycopg" in res["reason"]
    assert res["details"]["dsn"] == "host=127.0.0.1 password=******** dbname=x"


def test_mongodb_missing_library(monkeypatch):
    monkeypatch.setitem(checks._LIBS, "pymongo", None)  # as if pymongo were not installed
    res = run({"name": "m", "type": "mongodb", "uri": "mongodb://u:pw@127.0.0.1:1/x"})
    assert res["status"] == "unknown" and "pymongo is not installed" in res["reason"]
    assert res["details"]["uri"] == "mongodb://u:********@127.0.0.1:1/x"


@pytest.mark.skipif(checks.lib("pymongo") is None, reason="pymongo is not installed")
def test_mongodb_refused_is_crit():
    start = time.monotonic()
    res = run({"name": "m", "type": "mongodb", "uri": "mongodb://127.0.0.1:%d/?directConnection=true" % free_port(), "timeout": 0.5})
    assert res["status"] == "crit"
    assert time.monotonic() - start < 5
