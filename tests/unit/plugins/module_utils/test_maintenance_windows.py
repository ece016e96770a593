# -*- coding: utf-8 -*-
"""maintenance + gateway_config: pure logic, then a real Traefik (file provider), a real backend,
the real responder, and a real PostgreSQL 15 cluster for read-only mode. No mocks."""

from __future__ import absolute_import, division, print_function

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from ansible_collections.mcp.platform.plugins.module_utils import gateway_config
from ansible_collections.mcp.platform.plugins.module_utils import maintenance as mt
from ansible_collections.mcp.platform.plugins.module_utils import postgres as pg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unit_support import ROOT, VENV_BIN, Cluster, free_port, needs_pg, run_module  # noqa: E402

TRAEFIK = os.path.join(VENV_BIN, "traefik")
RESPONDER = os.path.join(ROOT, "lab", "maintenance", "responder.py")
GW = dict(service_provider="file", http_entrypoint="web", tls_entrypoint="websecure")


def tmpdirs():
    root = tempfile.mkdtemp(prefix="mcpmt")
    state, dyn = os.path.join(root, "state"), os.path.join(root, "dynamic")
    os.makedirs(state)
    os.makedirs(dyn)
    return root, state, dyn


# ----------------------------------------------------------------------------- pure logic

def test_render_routes_and_bypass():
    now = 1000.0
    state = mt.empty_state()
    state["gateway"].update(GW, dynamic_dir="/x", responder_url="http://127.0.0.1:1")
    state["services"]["alpha"] = mt.build_entry(None, "down", None, "me", 60, None, None, ["10.0.0.0/8"],
                                                {"name": "X-Ops", "value": "s3"}, now)
    state["services"]["postgres"] = mt.build_entry(None, "down", None, "me", 60, None, None, [], None, now)
    cfg = mt.render(state, now)["http"]
    r = cfg["routers"]
    assert set(r) == {"maintenance-alpha", "maintenance-alpha-tls", "maintenance-alpha-bypass", "maintenance-alpha-bypass-tls"}
    assert r["maintenance-alpha"]["rule"] == "PathPrefix(`/mcp/alpha`)" and r["maintenance-alpha"]["priority"] == 10000
    assert r["maintenance-alpha"]["service"] == "maintenance-responder"
    assert r["maintenance-alpha-tls"]["entryPoints"] == ["websecure"] and r["maintenance-alpha-tls"]["tls"] == {}
    b = r["maintenance-alpha-bypass"]
    assert b["rule"] == "PathPrefix(`/mcp/alpha`) && (ClientIP(`10.0.0.0/8`) || Header(`X-Ops`, `s3`))"
    assert b["service"] == "alpha@file" and b["middlewares"] == ["alpha-strip@file"] and b["priority"] == 20000
    assert cfg["middlewares"]["maintenance-alpha-tag"]["headers"]["customRequestHeaders"] == {mt.SERVICE_HEADER: "alpha"}
    assert cfg["services"]["maintenance-responder"]["loadBalancer"]["servers"] == [{"url": "http://127.0.0.1:1"}]


def test_enable_idempotent_ttl_not_extended_and_check_mode():
    root, state_dir, dyn = tmpdirs()
    try:
        kw = dict(services=["alpha"], known_services=["alpha", "beta"], message="m", by="me", ttl=600,
                  gateway=dict(GW, dynamic_dir=dyn))
        res = mt.manage(state_dir, "enabled", check_mode=True, now=1000.0, **kw)
        assert res["changed"] and not os.path.exists(os.path.join(dyn, "maintenance.yml"))
        assert not os.path.exists(os.path.join(state_dir, "maintenance.json"))
        res = mt.manage(state_dir, "enabled", now=1000.0, **kw)
        assert res["changed"] and res["in_maintenance"] == ["alpha"] and res["gateway_changed"]
        text = open(os.path.join(dyn, "maintenance.yml")).read()
        res = mt.manage(state_dir, "enabled", now=1100.0, **kw)
        assert not res["changed"], "same message and ttl: nothing changes, ttl counts from since"
        assert res["services"]["alpha"]["until"] == mt.iso(1600.0)
        assert open(os.path.join(dyn, "maintenance.yml")).read() == text
        kw2 = dict(kw)
        kw2["message"] = "new text"
        res = mt.manage(state_dir, "enabled", now=1200.0, **kw2)
        assert res["changed"] and res["before"]["alpha"]["message"] == "m" and res["after"]["alpha"]["message"] == "new text"
        assert res["services"]["alpha"]["since"] == mt.iso(1000.0), "since kept while the window stays on"
        st = mt.manage(state_dir, "status", now=1300.0)
        assert st["in_maintenance"] == ["alpha"] and st["services"]["alpha"]["by"] == "me"
        assert st["services"]["alpha"]["expires_in"] == 300
        # reconcile after expiry drops the entry and removes the gateway file
        rec = mt.reconcile(state_dir, now=1700.0)
        assert rec["changed"] and rec["expired"] == ["alpha"]
        assert not os.path.exists(os.path.join(dyn, "maintenance.yml"))
        res = mt.manage(state_dir, "disabled", now=1800.0, gateway=dict(GW, dynamic_dir=dyn))
        assert not res["changed"]
    finally:
        shutil.rmtree(root)


def test_unknown_service_lists_known_ones():
    root, state_dir, dyn = tmpdirs()
    try:
        with pytest.raises(mt.MaintenanceError) as err:
            mt.manage(state_dir, "enabled", services=["gamma"], known_services=["alpha", "beta"], message="m",
                      gateway=dict(GW, dynamic_dir=dyn))
        assert "gamma" in str(err.value) and "alpha, beta" in str(err.value)
        with pytest.raises(mt.MaintenanceError, match="postgres_dsn"):
            mt.manage(state_dir, "enabled", services=["postgres"], message="m", gateway=dict(GW, dynamic_dir=dyn))
        with pytest.raises(mt.MaintenanceError, match="past"):
            mt.manage(state_dir, "enabled", services=["alpha"], message="m", until="2001-01-01T00:00:00Z",
                      gateway=dict(GW, dynamic_dir=dyn))
    finally:
        shutil.rmtree(root)


def test_header_value_never_in_results():
    root, state_dir, dyn = tmpdirs()
    try:
        res = mt.manage(state_dir, "enabled", services=["alpha"], message="m", bypass_header={"name": "X-Ops", "value": "VerySecretV"},
                        gateway=dict(GW, dynamic_dir=dyn))
        assert "VerySecretV" not in json.dumps(res)
        assert oct(os.stat(os.path.join(state_dir, "maintenance.json")).st_mode & 0o777) == "0o600"
    finally:
        shutil.rmtree(root)


@pytest.mark.skipif(not os.path.exists(os.path.join(VENV_BIN, "ansible")), reason="no .venv/bin/ansible")
def test_module_unknown_service_fail_json():
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


# ----------------------------------------------------------------------------- real gateway

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with OPENER.open(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()
    except (urllib.error.URLError, ConnectionError, OSError) as exc:
        return None, {}, str(exc)


def wait_status(url, code, timeout, headers=None):
    t0 = time.monotonic()
    while True:
        status, hdrs, body = get(url, headers)
        if status == code:
            return time.monotonic() - t0, hdrs, body
        if time.monotonic() - t0 > timeout:
            raise AssertionError("%s: wanted %s within %s s, last %s %s" % (url, code, timeout, status, body[:200]))
        time.sleep(0.02)


class Gateway:
    def __init__(self):
        self.root, self.state, self.dyn = tmpdirs()
        self.web, self.tls, self.backend_port, self.responder_port = free_port(), free_port(), free_port(), free_port()
        www = os.path.join(self.root, "www")
        os.makedirs(www)
        with open(os.path.join(www, "health"), "w") as fh:
            fh.write("OK\n")
        conf = {"http": {"routers": {}, "services": {}, "middlewares": {}}}
        for svc in ("alpha", "beta"):
            rule = "PathPrefix(`/mcp/%s`)" % svc
            conf["http"]["routers"][svc] = {"rule": rule, "entryPoints": ["web"], "service": svc,
                                            "middlewares": ["%s-strip" % svc]}
            conf["http"]["routers"][svc + "-tls"] = {"rule": rule, "entryPoints": ["websecure"], "service": svc,
                                                     "middlewares": ["%s-strip" % svc], "tls": {}}
            conf["http"]["services"][svc] = {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:%d" % self.backend_port}]}}
            conf["http"]["middlewares"][svc + "-strip"] = {"stripPrefix": {"prefixes": ["/mcp/%s" % svc]}}
        with open(os.path.join(self.dyn, "backends.yml"), "w") as fh:
            json.dump(conf, fh)
        self.backend = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(self.backend_port),
                                         "--directory", www], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.responder = subprocess.Popen(["python3", RESPONDER, "--listen", "127.0.0.1:%d" % self.responder_port,
                                           "--state-file", os.path.join(self.state, "maintenance.json"), "--quiet"],
                                          stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.root, "responder.log"), "w"))
        self.traefik = None
        try:
            self.start_traefik()
            self.wait_ready()
        except BaseException:
            self.close()
            raise

    def wait_ready(self):
        try:
            wait_status(self.url("alpha"), 200, 20)
            wait_status(self.url("beta"), 200, 5)
        except AssertionError as exc:
            log = open(os.path.join(self.root, "traefik.log")).read()[-2000:]
            raise AssertionError("%s; traefik rc=%s, log: %s" % (exc, self.traefik.poll(), log))

    def start_traefik(self):
        self.traefik = subprocess.Popen(
            [TRAEFIK, "--global.checkNewVersion=false", "--global.sendAnonymousUsage=false", "--log.level=ERROR",
             "--entryPoints.web.address=127.0.0.1:%d" % self.web, "--entryPoints.websecure.address=127.0.0.1:%d" % self.tls,
             "--providers.file.directory=%s" % self.dyn, "--providers.file.watch=true"],
            stdout=open(os.path.join(self.root, "traefik.log"), "a"), stderr=subprocess.STDOUT)

    def stop_traefik(self):
        self.traefik.send_signal(signal.SIGTERM)
        try:
            self.traefik.wait(15)
        except subprocess.TimeoutExpired:
            self.traefik.kill()
            self.traefik.wait()

    def url(self, svc, path="/health"):
        return "http://127.0.0.1:%d/mcp/%s%s" % (self.web, svc, path)

    def gateway(self):
        return dict(GW, dynamic_dir=self.dyn, responder_url="http://127.0.0.1:%d" % self.responder_port)

    def close(self):
        for proc in (self.traefik, self.backend, self.responder):
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def gateway():
    if not os.path.exists(TRAEFIK):
        pytest.skip("no traefik binary at %s" % TRAEFIK)
    gw = Gateway()
    # Traefik applies the first change after a quiet period at once, later ones at most every 2 s
    # (providersThrottleDuration): measure from a quiet gateway, as in production.
    time.sleep(2.1)
    yield gw
    gw.close()


TIMINGS = {}


def test_gateway_maintenance_end_to_end(gateway):
    g = gateway
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


def test_gateway_ttl_expiry_lifts_itself(gateway):
    g = gateway
    mt.manage(g.state, "enabled", services=["beta"], message="short", by="tester", ttl=2, gateway=g.gateway())
    wait_status(g.url("beta"), 503, 2.0)
    status, hdrs, _body = get(g.url("beta"))
    assert status == 503 and 1 <= int(hdrs["Retry-After"]) <= 2, "Retry-After capped by the time left"
    time.sleep(2.2)
    # No module run: the responder notices the expiry on the next request (307 back to the same URL) and
    # rewrites the gateway file; the service is reachable right after.
    latency, _h, _b = wait_status(g.url("beta"), 200, 5.0)
    TIMINGS["expiry_to_200_s"] = round(latency, 3)
    assert not os.path.exists(os.path.join(g.dyn, "maintenance.yml"))
    assert json.load(open(os.path.join(g.state, "maintenance.json")))["services"] == {}


@needs_pg
def test_postgres_read_only():
    c = Cluster(replica=False)
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
        c.destroy()
        shutil.rmtree(root)


def test_gateway_config_atomic_write_and_remove():
    root = tempfile.mkdtemp()
    try:
        p = os.path.join(root, "x.yml")
        assert gateway_config.write_file(p, "a: 1\n")
        assert not gateway_config.write_file(p, "a: 1\n")
        assert gateway_config.write_file(p, None) and not os.path.exists(p)
        assert not gateway_config.write_file(p, None)
        assert [f for f in os.listdir(root) if f.endswith(".tmp")] == []
    finally:
        shutil.rmtree(root)
