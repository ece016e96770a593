# -*- coding: utf-8 -*-
"""health.datastores: the redis probe against a real redis-server (when installed), postgres and mongodb.

The lab's PostgreSQL pair and MongoDB (MCP_TEST_MONGODB_URI) are used when reachable and skipped with a visible
reason otherwise.
"""
from __future__ import absolute_import, division, print_function

import importlib
import os
import shutil
import socket
import subprocess
import time

import pytest

from ansible_collections.mcp.platform.plugins.module_utils import postgres as pg
from ansible_collections.mcp.platform.plugins.module_utils.health import checks
from ansible_collections.mcp.platform.plugins.module_utils.health.checks import validate_check
from ansible_collections.mcp.platform.plugins.module_utils.health.probes import PROBES

LAB_PG = ("127.0.0.1", 25432)
LAB_PG_REPLICA = ("127.0.0.1", 25433)


def reachable(addr):
    try:
        socket.create_connection(addr, timeout=0.5).close()
        return True
    except OSError:
        return False


def run(check):
    return PROBES[check["type"]](validate_check(check, 0))


def use_driver(monkeypatch, driver):
    """Make postgres.py connect through ``driver`` ("psycopg2" or "psycopg") as if it were the only one installed,
    or through none (None); skip when that driver is not installed here."""
    module = None
    if driver is not None:
        try:
            module = importlib.import_module(driver)
            importlib.import_module(driver + (".extensions" if driver == "psycopg2" else ".conninfo"))
        except ImportError:
            pytest.skip("%s is not installed" % driver)
    monkeypatch.setattr(pg, "psycopg2", module if driver == "psycopg2" else None)
    monkeypatch.setattr(pg, "psycopg", module if driver == "psycopg" else None)
    monkeypatch.setattr(pg, "DRIVER", driver)
    monkeypatch.setattr(pg, "HAS_DRIVER", driver is not None)
    monkeypatch.setattr(pg, "DRIVER_ERRORS", (module.Error,) if module else ())


# --------------------------------------------------------------------------------------------
# redis (a real redis-server when installed)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def redis_port(tmp_path_factory, free_port):
    exe = shutil.which("redis-server")
    if not exe:
        pytest.skip("redis-server is not installed; the redis probe is covered against the lab in tests/integration")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--requirepass", "r3dis-pw", "--dir", str(tmp_path_factory.mktemp("redis"))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while not reachable(("127.0.0.1", port)):
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.skip("redis-server did not start")
        time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)


def test_redis_ping_with_auth(redis_port):
    res = run({"name": "r", "type": "redis", "url": "redis://127.0.0.1:%d/0" % redis_port, "password": "r3dis-pw"})
    assert res["status"] == "ok", res
    assert res["details"]["role"] == "master" and res["details"]["redis_version"]
    res = run({"name": "r", "type": "redis", "url": "redis://:r3dis-pw@127.0.0.1:%d/1" % redis_port})
    assert res["status"] == "ok" and res["details"]["url"] == "redis://:********@127.0.0.1:%d/1" % redis_port


def test_redis_auth_failures(redis_port):
    res = run({"name": "r", "type": "redis", "url": "redis://127.0.0.1:%d" % redis_port})
    assert res["status"] == "crit" and "NOAUTH" in res["reason"]
    res = run({"name": "r", "type": "redis", "url": "redis://127.0.0.1:%d" % redis_port, "password": "wrong"})
    assert res["status"] == "crit" and ("WRONGPASS" in res["reason"] or "invalid password" in res["reason"])


def test_redis_refused_and_not_redis(http_url, free_port):
    res = run({"name": "r", "type": "redis", "url": "redis://127.0.0.1:%d" % free_port()})
    assert res["status"] == "crit" and "connection refused" in res["reason"]
    port = int(http_url.rsplit(":", 1)[1])
    res = run({"name": "r", "type": "redis", "url": "redis://127.0.0.1:%d" % port, "timeout": 2})
    assert res["status"] == "crit"


# --------------------------------------------------------------------------------------------
# postgres (lab), mongodb (MCP_TEST_MONGODB_URI)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_postgres_refused_masks_password(monkeypatch, free_port, driver):
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


def lab_pg_roles():
    """(primary, replica) addresses of the lab pair: a failover test may have swapped them."""
    roles = {}
    for addr in (LAB_PG, LAB_PG_REPLICA):
        res = run({"name": "p", "type": "postgres", "dsn": "host=%s port=%d user=postgres dbname=postgres" % addr})
        roles[res["details"].get("role")] = addr
    if set(roles) != {"primary", "replica"}:
        pytest.skip("the lab PostgreSQL pair is not a primary and a replica right now: %s" % roles)
    return roles["primary"], roles["replica"]


@pytest.mark.skipif(not reachable(LAB_PG), reason="lab PostgreSQL primary (127.0.0.1:25432) is not running (make lab-up)")
@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_postgres_lab_primary(monkeypatch, driver):
    use_driver(monkeypatch, driver)
    primary, _replica = lab_pg_roles()
    dsn = "postgresql://postgres:ignored-pw@%s:%d/postgres" % primary
    res = run({"name": "p", "type": "postgres", "dsn": dsn, "expect_role": "primary"})
    assert res["status"] == "ok", res
    assert res["details"]["role"] == "primary" and res["details"]["dsn"].startswith("postgresql://postgres:********@")
    res = run({"name": "p", "type": "postgres", "dsn": "host=%s port=%d user=postgres dbname=postgres" % primary, "expect_role": "replica"})
    assert res["status"] == "crit" and "role is primary, expected replica" in res["reason"]


@pytest.mark.skipif(not reachable(LAB_PG_REPLICA), reason="lab PostgreSQL replica (127.0.0.1:25433) is not running (make lab-up)")
def test_postgres_lab_replica():
    _primary, replica = lab_pg_roles()
    res = run({"name": "p", "type": "postgres", "dsn": "host=%s port=%d user=postgres dbname=postgres" % replica,
               "expect_role": "replica", "max_lag_seconds": 3600})
    assert res["status"] in ("ok", "warn"), res
    assert res["details"]["role"] == "replica" and res["details"]["lag_bytes"] is not None


def test_mongodb_missing_library(monkeypatch):
    monkeypatch.setitem(checks._LIBS, "pymongo", None)  # as if pymongo were not installed
    res = run({"name": "m", "type": "mongodb", "uri": "mongodb://u:pw@127.0.0.1:1/x"})
    assert res["status"] == "unknown" and "pymongo is not installed" in res["reason"]
    assert res["details"]["uri"] == "mongodb://u:********@127.0.0.1:1/x"


@pytest.mark.skipif(checks.lib("pymongo") is None, reason="pymongo is not installed")
def test_mongodb_refused_is_crit(free_port):
    start = time.monotonic()
    res = run({"name": "m", "type": "mongodb", "uri": "mongodb://127.0.0.1:%d/?directConnection=true" % free_port(), "timeout": 0.5})
    assert res["status"] == "crit"
    assert time.monotonic() - start < 5


@pytest.mark.skipif(not os.environ.get("MCP_TEST_MONGODB_URI"), reason="no MongoDB server here; set MCP_TEST_MONGODB_URI to test against one")
def test_mongodb_ping():
    res = run({"name": "m", "type": "mongodb", "uri": os.environ["MCP_TEST_MONGODB_URI"]})
    assert res["status"] == "ok", res
    assert res["details"]["server_version"]
