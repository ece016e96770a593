# -*- coding: utf-8 -*-
"""Helpers of the health probe tests: run one check through its probe, a validated MCP check, one PostgreSQL driver."""
from __future__ import absolute_import, division, print_function

import importlib

import pytest

from ansible_collections.mcp.platform.plugins.module_utils import postgres as pg
from ansible_collections.mcp.platform.plugins.module_utils.health.checks import validate_check
from ansible_collections.mcp.platform.plugins.module_utils.health.probes import PROBES


def run(check):
    """The result of ``check`` (validated as checks[0]) from the probe of its type."""
    return PROBES[check["type"]](validate_check(check, 0))


def mcp_check(url, **kw):
    check = {"name": "m", "type": "mcp", "url": url}
    check.update(kw)
    return validate_check(check, 0)


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
