# -*- coding: utf-8 -*-
"""health.datastores: the redis probe against a real redis-server (``redis_port``, when installed), postgres against
the lab's pair and mongodb (MCP_TEST_MONGODB_URI).

The lab's PostgreSQL pair and MongoDB are used when reachable and skipped with a visible reason otherwise. The probes
without a server are in tests/unit.
"""
from __future__ import absolute_import, division, print_function

import os

import pytest
from support.health import run, use_driver
from support.lab import PG, PG_ADMIN_PASSWORD, pg_dsn
from support.ports import answers, free_port

PG_UP = all(answers(*addr, timeout=0.5) for addr in PG)


# --------------------------------------------------------------------------------------------
# redis (a real redis-server when installed)
# --------------------------------------------------------------------------------------------
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


def test_redis_refused_and_not_redis(http_url):
    res = run({"name": "r", "type": "redis", "url": "redis://127.0.0.1:%d" % free_port()})
    assert res["status"] == "crit" and "connection refused" in res["reason"]
    port = int(http_url.rsplit(":", 1)[1])
    res = run({"name": "r", "type": "redis", "url": "redis://127.0.0.1:%d" % port, "timeout": 2})
    assert res["status"] == "crit"


# --------------------------------------------------------------------------------------------
# postgres (lab), mongodb (MCP_TEST_MONGODB_URI)
# --------------------------------------------------------------------------------------------
def lab_pg_roles():
    """(primary, replica) addresses of the lab pair: a failover test may have swapped them."""
    roles = {}
    for addr in PG:
        res = run({"name": "p", "type": "postgres", "dsn": pg_dsn(addr)})
        roles[res["details"].get("role")] = addr
    if set(roles) != {"primary", "replica"}:
        pytest.skip("the lab PostgreSQL pair is not a primary and a replica right now: %s" % roles)
    return roles["primary"], roles["replica"]


@pytest.mark.skipif(not PG_UP, reason="the lab's PostgreSQL nodes %s are not running (make lab-up)" % PG)
@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_postgres_lab_primary(monkeypatch, driver):
    use_driver(monkeypatch, driver)
    primary, _replica = lab_pg_roles()
    dsn = "postgresql://postgres:%s@%s:%d/postgres" % ((PG_ADMIN_PASSWORD,) + primary)
    res = run({"name": "p", "type": "postgres", "dsn": dsn, "expect_role": "primary"})
    assert res["status"] == "ok", res
    assert res["details"]["role"] == "primary" and res["details"]["dsn"].startswith("postgresql://postgres:********@")
    res = run({"name": "p", "type": "postgres", "dsn": pg_dsn(primary), "expect_role": "replica"})
    assert res["status"] == "crit" and "role is primary, expected replica" in res["reason"]


@pytest.mark.skipif(not PG_UP, reason="the lab's PostgreSQL nodes %s are not running (make lab-up)" % PG)
def test_postgres_lab_replica():
    _primary, replica = lab_pg_roles()
    res = run({"name": "p", "type": "postgres", "dsn": pg_dsn(replica),
               "expect_role": "replica", "max_lag_seconds": 3600})
    assert res["status"] in ("ok", "warn"), res
    assert res["details"]["role"] == "replica" and res["details"]["lag_bytes"] is not None


@pytest.mark.skipif(not os.environ.get("MCP_TEST_MONGODB_URI"), reason="no MongoDB server here; set MCP_TEST_MONGODB_URI to test against one")
def test_mongodb_ping():
    res = run({"name": "m", "type": "mongodb", "uri": os.environ["MCP_TEST_MONGODB_URI"]})
    assert res["status"] == "ok", res
    assert res["details"]["server_version"]
