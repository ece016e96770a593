# -*- coding: utf-8 -*-
"""postgres.py, the one connection layer: where each parameter comes from, shared passwords, masking.

Pure (the driver parses and builds DSNs, nothing connects) except the refused-connection check, which needs no
server either. The module through ``ansible`` is in tests/component.
"""

from __future__ import absolute_import, division, print_function

import pytest
from support.ports import free_port

from ansible_collections.mcp.platform.plugins.module_utils import postgres as pg
from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError
from ansible_collections.mcp.platform.plugins.module_utils.secrets import MASK, mask_text

needs_driver = pytest.mark.skipif(not pg.HAS_DRIVER, reason="no psycopg2/psycopg")

ENV = {"PGHOST": "envhost", "PGPORT": "6000", "PGUSER": "envuser", "PGPASSWORD": "EnvSecret9", "PGDATABASE": "envdb",
       "PGSSLMODE": "require"}


def test_mask_hides_passwords():
    assert "s3cr" not in mask_text("host=a password=s3cr3t user=b")
    assert "s3cr" not in mask_text("host=a password='s3 cr3t' user=b")
    assert "s3cr" not in mask_text("postgresql://u:s3cr3t@h:5432/db")
    assert "s3cr" not in mask_text("postgres://h/db?user=u&password=s3cr3t")
    assert "s3cr" not in mask_text("error for s3cr3t", ["s3cr3t"])


@needs_driver
def test_invalid_dsn_masked():
    with pytest.raises(pg.PostgresError) as err:
        pg.parse_dsn("host=x password=TopSecret3 bogus")
    assert "TopSecret3" not in str(err.value)
    with pytest.raises(pg.PostgresError, match="^candidate_dsn is not a valid libpq connection string"):
        pg.parse_dsn("host=x password=TopSecret3 bogus", "candidate_dsn")
    assert issubclass(pg.PostgresError, PlatformError)


@needs_driver
def test_resolve_precedence_option_over_dsn_over_environment():
    # environment only
    assert pg.resolve({}, ENV) == dict(host="envhost", port="6000", user="envuser", password="EnvSecret9",
                                       dbname="envdb", sslmode="require")
    # the DSN beats the environment, key by key; what it lacks still comes from the environment
    got = pg.resolve({"postgres_dsn": "host=dsnhost port=7000 dbname=dsndb"}, ENV)
    assert got == dict(host="dsnhost", port="7000", user="envuser", password="EnvSecret9", dbname="dsndb",
                       sslmode="require")
    # an explicit option beats both
    got = pg.resolve({"postgres_dsn": "postgresql://dsnuser:DsnPw@dsnhost:7000/dsndb", "postgres_host": "opthost",
                      "postgres_port": 8000, "postgres_password": "OptPw", "postgres_ssl_mode": "disable",
                      "postgres_user": "", "postgres_dbname": None}, ENV)
    assert got == dict(host="opthost", port="8000", user="dsnuser", password="OptPw", dbname="dsndb",
                       sslmode="disable")
    # defaults are the lowest
    assert pg.resolve({}, {}, defaults={"dbname": "postgres"}) == {"dbname": "postgres"}
    assert pg.resolve({}, {"PGDATABASE": "envdb"}, defaults={"dbname": "postgres"}) == {"dbname": "envdb"}
    # another option name for the DSN, named when it is invalid
    assert pg.resolve({"primary_dsn": "host=a"}, {}, option="primary_dsn") == {"host": "a"}
    with pytest.raises(pg.PostgresError, match="^primary_dsn is not a valid"):
        pg.resolve({"primary_dsn": "host=a bogus"}, {}, option="primary_dsn")
    # nothing set: no DSN at all
    assert pg.resolve_dsn({}, {}) is None
    built = pg.parse_dsn(pg.resolve_dsn({"postgres_host": "h", "postgres_port": 5433}, {}))
    assert built == {"host": "h", "port": "5433"}


@needs_driver
def test_with_password_fills_only_a_dsn_without_one():
    filled = pg.parse_dsn(pg.with_password("host=h user=u", "Shared1"))
    assert filled == {"host": "h", "user": "u", "password": "Shared1"}
    assert pg.with_password("host=h password=Own1", "Shared1") == "host=h password=Own1"
    assert pg.with_password("postgresql://u:Own2@h/db", "Shared1") == "postgresql://u:Own2@h/db"
    assert pg.parse_dsn(pg.with_password("postgresql://u@h:5433/db", "Shared1"))["password"] == "Shared1"
    assert pg.with_password("host=h", None) == "host=h" and pg.with_password(None, "Shared1") is None
    with pytest.raises(pg.PostgresError, match="^candidate_dsn is not a valid"):
        pg.with_password("host=h bogus", "Shared1", "candidate_dsn")


def test_target_never_shows_the_password():
    assert pg.target("host=db1 port=5433 user=app password=Secret1 dbname=mcp") == "app@db1:5433/mcp"
    assert pg.target("host=db1 password='Sec ret' user=app") == "app@db1:5432/"
    assert pg.target("postgresql://app:Secret1@db1:5433/mcp?sslmode=require") == "app@db1:5433/mcp"
    assert pg.target("postgresql://db1/mcp") == "@db1:5432/mcp"
    assert pg.target(None) == "(no DSN)"
    for dsn in ("host=db1 password=Secret1", "postgresql://app:Secret1@db1/mcp"):
        assert "Secret1" not in pg.target(dsn)


@needs_driver
def test_a_password_from_pgpassword_is_masked():
    dsn = pg.resolve_dsn({"postgres_host": "h"}, {"PGPASSWORD": "Env$ecret 7"})
    assert pg.parse_dsn(dsn)["password"] == "Env$ecret 7"
    assert "Env$ecret 7" in pg.dsn_secrets(dsn)
    text = pg.error_text(RuntimeError("FATAL:  password \"Env$ecret 7\" rejected\n  for %s" % dsn), dsn)
    assert "Env$ecret" not in text and MASK in text and "\n" not in text
    assert "Env$ecret" not in pg.describe_dsn(dsn) and "Env$ecret" not in pg.target(dsn)
    assert "Env$ecret" not in mask_text("conninfo %s" % dsn, pg.dsn_secrets(dsn))


@needs_driver
def test_refused_connection_error_is_masked():
    dsn = pg.resolve_dsn({"postgres_host": "127.0.0.1", "postgres_port": free_port(), "postgres_user": "x"},
                         {"PGPASSWORD": "EnvSecret10"})
    with pytest.raises(pg.DRIVER_ERRORS) as err:
        pg.connect(dsn, 2)
    assert "EnvSecret10" not in pg.error_text(err.value, dsn)
