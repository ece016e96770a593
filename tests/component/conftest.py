# -*- coding: utf-8 -*-
"""The component tier's services: one real local service per fixture, each skipping (with the reason) where it
cannot run. The helpers behind them are in tests/support.

- PostgreSQL 15 (Debian binaries, as root): ``pg_cluster`` (a factory), ``pg_cluster_for_class`` (one primary +
  replica for an ordered test class), ``pg_scram_server`` (one node with a password login), ``scratch_pg_server`` (a
  throwaway one, root or not: never the lab's, which the integration tier owns)
- ``registry`` (Docker Distribution, empty), ``moto`` (S3/IAM), ``redis_port`` (redis-server), ``mcp_servers`` (the MCP SDK server in three modes)
- ``http_url`` / ``tls_port`` (a local HTTP / HTTPS server), ``fake_mcp`` (a hand-written MCP endpoint)
- ``traefik_gateway`` (Traefik, a backend and the maintenance responder), ``lab_app`` (the lab image's app, a factory)
- ``run_module`` / ``run_module_json`` / ``run_module_result``: the ``ansible`` CLI running one module

Nothing imported here may import ``ansible_collections`` at import time: pytest loads this file before pytest-ansible
installs its collection finder (when pytest runs from the repository root), and a collection package imported
before that makes every later import from it fail ("collection metadata was not loaded").
"""
from __future__ import absolute_import, division, print_function

import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
import time

import pytest
from support import ansible_cli
from support import moto as moto_support
from support import registry as registry_support
from support.gateway import TRAEFIK, Gateway
from support.http_servers import HealthHandler, MCPHandler, self_signed, serve
from support.lab_app import Server as LabAppServer
from support.mcp_sdk import MODES, SERVER, start_sdk_server
from support.ports import answers, free_port
from support.postgres import PGBIN, Cluster, as_pg, pg_available


# ----------------------------------------------------------------------------- PostgreSQL
@pytest.fixture
def pg_cluster():
    """``pg_cluster(replica=True)``: a fresh primary (and streaming replica), destroyed after the test."""
    made = []

    def make(replica=True):
        reason = pg_available()
        if reason:
            pytest.skip(reason)
        cluster = Cluster(replica=replica)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.destroy()


@pytest.fixture(scope="class")
def pg_cluster_for_class():
    """One primary + streaming replica shared by the tests of a class (run in order), destroyed after the last."""
    reason = pg_available()
    if reason:
        pytest.skip(reason)
    cluster = Cluster()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def pg_scram_server():
    """One node: trust for postgres, scram-sha-256 for the rest; role ``mcp`` (superuser, a password) owning the empty
    database ``mcp_production``. Yields the connection options of mcp_backup (postgres_host, ..._password, ...)."""
    psycopg2 = pytest.importorskip("psycopg2")
    if os.geteuid() != 0:
        pytest.skip("needs root to run a PostgreSQL cluster as the postgres user")
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user")
    if not os.path.exists(os.path.join(PGBIN, "initdb")):
        pytest.skip("PostgreSQL 15 binaries not found in %s" % PGBIN)
    password = "pg-Pa55word-hidden"
    base = tempfile.mkdtemp(prefix="mcp-pgtest-")
    os.chmod(base, 0o755)
    data = os.path.join(base, "data")
    os.mkdir(data)
    os.chown(data, pw.pw_uid, pw.pw_gid)
    port = free_port()
    as_pg([PGBIN + "/initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"])
    with open(os.path.join(data, "pg_hba.conf"), "w") as fh:
        fh.write("local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
    as_pg([PGBIN + "/pg_ctl", "-D", data, "-w", "-l", os.path.join(data, "log"),
           "-o", "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off" % (port, data), "start"])
    params = {"postgres_host": "127.0.0.1", "postgres_port": port, "postgres_user": "mcp", "postgres_password": password,
              "postgres_dbname": "mcp_production"}
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("CREATE ROLE mcp LOGIN SUPERUSER PASSWORD %s", (password,))
        cur.execute("CREATE DATABASE mcp_production OWNER mcp")
        conn.close()
        yield params
    finally:
        as_pg([PGBIN + "/pg_ctl", "-D", data, "-m", "immediate", "stop"], check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def scratch_pg_server():
    """A libpq URI prefix (no database) of a PostgreSQL we may create scratch databases on."""
    if not os.path.exists(os.path.join(PGBIN, "initdb")):
        pytest.skip("no PostgreSQL 15 binaries (%s/initdb)" % PGBIN)
    port = free_port(34400, 34499)  # inside the range lab/images/README.md documents for these tests
    tmp = tempfile.mkdtemp(prefix="mcp-lab-pg-")
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = os.path.join(tmp, "data")
    try:
        if run_as:
            shutil.chown(tmp, "postgres")
        subprocess.run(run_as + [PGBIN + "/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                       check=True, capture_output=True)
        subprocess.run(run_as + [PGBIN + "/pg_ctl", "-D", data, "-o", f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1",
                                 "-l", os.path.join(tmp, "pg.log"), "-w", "start"], check=True, capture_output=True)
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(run_as + [PGBIN + "/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- S3, redis, MCP SDK
@pytest.fixture(scope="session")
def moto():
    """The endpoint URL of a moto S3 server (buckets per test: names are random)."""
    proc, endpoint = moto_support.start_moto()
    yield endpoint
    moto_support.stop(proc)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """Base URL of an empty registry of this module's own (support.registry.push_image fills it)."""
    proc, url = registry_support.start_registry(str(tmp_path_factory.mktemp("registry")))
    yield url
    registry_support.stop(proc)


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    """A redis-server on 127.0.0.1 with ``requirepass r3dis-pw``."""
    exe = shutil.which("redis-server")
    if not exe:
        pytest.skip("redis-server is not installed; the redis probe is covered against the lab in tests/integration")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--requirepass", "r3dis-pw", "--dir", str(tmp_path_factory.mktemp("redis"))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while not answers("127.0.0.1", port):
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.skip("redis-server did not start")
        time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def mcp_servers(tmp_path_factory):
    """The SDK server in three modes, by mode: base URLs. SSE replies, JSON replies, and a broken /mcp (badhost)."""
    script = tmp_path_factory.mktemp("mcp") / "server.py"
    script.write_text(SERVER)
    procs, urls = [], {}
    try:
        for mode in MODES:
            proc, urls[mode] = start_sdk_server(script, mode)
            procs.append(proc)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


# ----------------------------------------------------------------------------- local HTTP servers
def _served(handler, **kwargs):
    """A running server of ``handler`` and its base URL, shut down when the fixture using it ends."""
    server = serve(handler, **kwargs)
    try:
        yield server, "http://127.0.0.1:%d" % server.server_address[1]
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def http_url():
    """Base URL of a plain HTTP server (support.http_servers.HealthHandler: /health, /slow, /down, /flip, ...)."""
    for _server, url in _served(HealthHandler):
        yield url


@pytest.fixture(scope="module")
def tls_port(tmp_path_factory):
    """The port of an HTTPS server (the same handler) with a self-signed certificate that expires in 5 days."""
    cert, key = self_signed(tmp_path_factory.mktemp("tls"), days=5)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    for server, _url in _served(HealthHandler, ssl_context=ctx):
        yield server.server_address[1]


@pytest.fixture(scope="module")
def fake_mcp():
    """Base URL of the hand-written MCP endpoint (support.http_servers.MCPHandler)."""
    for _server, url in _served(MCPHandler):
        yield url


# ----------------------------------------------------------------------------- gateway, lab image app
@pytest.fixture(scope="module")
def traefik_gateway():
    """support.gateway.Gateway: Traefik (file provider) routing /mcp/alpha and /mcp/beta, the maintenance responder."""
    if not os.path.exists(TRAEFIK):
        pytest.skip("no traefik binary at %s" % TRAEFIK)
    gw = Gateway()
    # Traefik applies the first change after a quiet period at once, later ones at most every 2 s
    # (providersThrottleDuration): measure from a quiet gateway, as in production.
    time.sleep(2.1)
    yield gw
    gw.close()


@pytest.fixture
def lab_app(tmp_path):
    """``lab_app(MCP_SERVICE=..., ...)``: the lab image's app started with that environment (on a port of
    support.lab_app.PORTS), stopped after the test."""
    started = []

    def start(**env):
        s = LabAppServer(tmp_path, **env)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


# ----------------------------------------------------------------------------- the ansible CLI
def _ansible():
    reason = ansible_cli.ansible_available()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def run_module():
    """support.ansible_cli.run_module: ``(module, args, verbosity="-vvv", extra_env=None)`` -> (rc, text output)."""
    _ansible()
    return ansible_cli.run_module


@pytest.fixture(scope="session")
def run_module_json():
    """support.ansible_cli.run_module_json: ``(module, args, check=False, verbosity=0)`` -> (rc, output, result)."""
    _ansible()
    return ansible_cli.run_module_json


@pytest.fixture(scope="session")
def run_module_result():
    """support.ansible_cli.run_module_result: ``(module, args, *extra_argv)`` -> (CompletedProcess, result)."""
    _ansible()
    return ansible_cli.run_module_result
