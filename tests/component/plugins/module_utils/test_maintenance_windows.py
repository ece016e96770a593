# -*- coding: utf-8 -*-
"""maintenance: a real Traefik (file provider), a real backend, the real responder (``traefik_gateway``), a real
PostgreSQL 15 cluster for read-only mode (``pg_cluster``), and the module through ``ansible`` (``run_module``);
tests/component/conftest.py. No mocks. The pure logic is in tests/unit."""

from __future__ import absolute_import, division, print_function

import json
import os
import shutil
import sys
import time

import pytest
from support.gateway import GW, get, tmpdirs, wait_status
from support.postgres import needs_pg

from ansible_collections.mcp.platform.plugins.module_utils import maintenance as mt
from ansible_collections.mcp.platform.plugins.module_utils import postgres as pg


def test_module_unknown_service_fail_json(run_module):
    root, state_dir, dyn = tmpdirs()
    try:
        rc, out = run_module("mcp.platform.mcp_maintenance",
                             "state=enabled services=gamma known_services=alpha,beta msg=x state_dir=%s "
                             "gateway_dynamic_dir=%s" % (state_dir, dyn), verbosity="-v")
        assert rc != 0 and "unknown service(s) gamma; known services: alpha, beta, postgres" in out
        rc, out = run_module("mcp.platform.mcp_maintenance",
                             "state=enabled services=alpha known_services=alpha,beta msg=x state_dir=%s "
                             "gateway_dynamic_dir=%s service_provider=file" % (state_dir, dyn), verbosity="-v")
        assert rc == 0 and 'localhost | CHANGED' in out, out
        rc, out = run_module("mcp.platform.mcp_maintenance",
                             "state=enabled services=alpha known_services=alpha,beta msg=x state_dir=%s "
                             "gateway_dynamic_dir=%s service_provider=file" % (state_dir, dyn), verbosity="-v")
        assert rc == 0 and 'localhost | SUCCESS' in out, out
    finally:
        shutil.rmtree(root)


TIMINGS = {}


def test_gateway_maintenance_end_to_end(traefik_gateway):
    g = traefik_gateway
    res = mt.manage(g.state, "enabled", services=["alpha"], known_services=["alpha", "beta"], message="Upgrading alpha",
                    by="tester", retry_after=120, bypass_header={"name": "X-MCP-Ops", "value": "letmein"},
                    gateway=g.gateway())
    assert res["changed"]
    latency, hdrs, body = wait_status(g.url("alpha"), 503, 2.0)
    TIMINGS["enable_to_503_s"] = round(latency, 3)
    assert hdrs["Retry-After"] == "120"
    data = json.loads(body)
    assert data["message"] == "Upgrading alpha" and data["service"] == "alpha"
    status, hdrs, body = get(g.url("alpha"), {"Accept": "text/plain"})
    assert status == 503 and "Upgrading alpha" in body
    assert get(g.url("beta"))[0] == 200
    assert get(g.url("alpha"), {"X-MCP-Ops": "letmein"})[0] == 200, "bypass header reaches the service"
    assert get(g.url("alpha"), {"X-MCP-Ops": "wrong"})[0] == 503

    # a new message is served without restarting anything
    assert mt.manage(g.state, "enabled", services=["alpha"], message="Still upgrading", by="tester", retry_after=120,
                     bypass_header={"name": "X-MCP-Ops", "value": "letmein"}, gateway=g.gateway())["changed"]
    assert json.loads(get(g.url("alpha"))[2])["message"] == "Still upgrading"

    # Traefik restart: the file provider reads the folder again, still in maintenance
    g.stop_traefik()
    g.start_traefik()
    wait_status(g.url("beta"), 200, 20)
    assert get(g.url("alpha"))[0] == 503

    res = mt.manage(g.state, "disabled", services=["alpha"], gateway=g.gateway())
    assert res["changed"] and res["in_maintenance"] == []
    latency, _h, _b = wait_status(g.url("alpha"), 200, 5.0)  # Traefik throttles reloads (2 s)
    TIMINGS["disable_to_200_s"] = round(latency, 3)
    sys.stderr.write("\nmaintenance timings: %s\n" % json.dumps(TIMINGS))


def test_gateway_ttl_expiry_lifts_itself(traefik_gateway):
    g = traefik_gateway
    # The window is longer than Traefik's reload throttle (2 s) plus a busy machine's file-watch delay, so the
    # 503 is seen before the window ends.
    ends = time.monotonic() + 8
    mt.manage(g.state, "enabled", services=["beta"], message="short", by="tester", ttl=8, gateway=g.gateway())
    wait_status(g.url("beta"), 503, 6.0)
    status, hdrs, _body = get(g.url("beta"))
    assert status == 503 and 1 <= int(hdrs["Retry-After"]) <= 8, "Retry-After capped by the time left"
    time.sleep(max(0.0, ends - time.monotonic()) + 0.2)
    # No module run: the responder notices the expiry on the next request (307 back to the same URL) and
    # rewrites the gateway file; the service is reachable right after.
    latency, _h, _b = wait_status(g.url("beta"), 200, 5.0)
    TIMINGS["expiry_to_200_s"] = round(latency, 3)
    assert not os.path.exists(os.path.join(g.dyn, "maintenance.yml"))
    assert json.load(open(os.path.join(g.state, "maintenance.json")))["services"] == {}


@needs_pg
def test_postgres_read_only(pg_cluster):
    c = pg_cluster(replica=False)
    root, state_dir, dyn = tmpdirs()

    class PG:
        def get(self):
            return pg.get_read_only(c.primary.dsn)

        def set(self, value):
            pg.set_read_only(c.primary.dsn, value)
    try:
        c.primary.sql("CREATE TABLE w (x int)")
        res = mt.manage(state_dir, "enabled", services=["postgres"], message="db maintenance", postgres=PG(),
                        gateway=dict(GW, dynamic_dir=dyn))
        assert res["changed"] and res["postgres_read_only"] is True and res["postgres_changed"]
        assert not os.path.exists(os.path.join(dyn, "maintenance.yml")), "postgres is not a gateway route"
        with pytest.raises(pg.DRIVER_ERRORS, match="read-only transaction"):
            c.primary.sql("INSERT INTO w VALUES (1)")
        assert c.primary.sql("SELECT count(*) FROM w") == [(0,)]
        again = mt.manage(state_dir, "enabled", services=["postgres"], message="db maintenance", postgres=PG(),
                          gateway=dict(GW, dynamic_dir=dyn))
        assert not again["changed"]
        st = mt.manage(state_dir, "status", postgres=PG())
        assert st["postgres_read_only"] is True and st["in_maintenance"] == ["postgres"]
        res = mt.manage(state_dir, "disabled", postgres=PG(), gateway=dict(GW, dynamic_dir=dyn))
        assert res["changed"] and res["postgres_read_only"] is False
        c.primary.sql("INSERT INTO w VALUES (1)")
        # an expired postgres window is reset by the next run that has the DSN
        mt.manage(state_dir, "enabled", services=["postgres"], message="m", ttl=1, postgres=PG(),
                  gateway=dict(GW, dynamic_dir=dyn))
        assert pg.get_read_only(c.primary.dsn) is True
        mt.reconcile(state_dir, now=time.time() + 5)  # the responder cannot reset it ...
        assert "postgres" in mt.load_state(state_dir)["services"]
        res = mt.manage(state_dir, "status", postgres=PG(), now=time.time() + 5)
        assert res["in_maintenance"] == [] and res["expired"] == ["postgres"]
        res = mt.manage(state_dir, "disabled", services=[], postgres=PG(), gateway=dict(GW, dynamic_dir=dyn),
                        now=time.time() + 5)
        assert res["changed"] and res["postgres_read_only"] is False and pg.get_read_only(c.primary.dsn) is False
    finally:
        shutil.rmtree(root)
