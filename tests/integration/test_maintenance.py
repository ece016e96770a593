"""maintenance.yml against the lab (issue 5): 503 + message + Retry-After through every gateway, the database
read-only, survives a gateway restart, expiry lifts it, disable restores everything.

The tests hold the fleet lock for the whole module (waiting for other operations to finish first) and run the
playbook under it, so no other operation (a restore, an update) runs while the database is read-only.
Every test leaves the lab as it found it: nothing in maintenance, the database writable, every gateway running.

Where things are: the playbook's gateway work runs on each MCP host over SSH (its own /var/lib/mcp, read here
through host_path), the read-only switch on the PostgreSQL primary (pg-1's address, from a host); the fleet lock is
the controller's own file, so the fixture takes it there with the collection's own lock code.
"""
import json
import os
import time
import urllib.error
import urllib.request
import uuid

import pytest
from conftest import MCP_HOSTS, host_path, pg_dsn, pg_roles, wait_until

HOSTS = tuple(MCP_HOSTS)
TRAEFIK = "/usr/local/bin/traefik"


def get(url, timeout=3):
    """(status, headers, body) of a GET, following the responder's 307 after an expiry."""
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        return None, {}, str(exc)


def gw(lab, host, service):
    return "http://%s:%d/mcp/%s/health" % (lab["lab_hosts"][host], lab["lab_gateway_http_port"], service)


def wait_status(lab, service, code, hosts=HOSTS, timeout=10.0):
    """Seconds until every host's gateway answers `code` for the service (fails after `timeout`)."""
    t0 = time.monotonic()
    pending = set(hosts)
    while pending:
        for host in sorted(pending):
            if get(gw(lab, host, service), timeout=2)[0] == code:
                pending.discard(host)
        if pending:
            assert time.monotonic() - t0 < timeout, "%s still not %s on %s after %.0f s" % (service, code, sorted(pending), timeout)
            time.sleep(0.05)
    return time.monotonic() - t0


def db_connect(lab):
    """The application user on the current primary, from the controller."""
    import psycopg2
    primary = [n for n, r in pg_roles().items() if r == "primary"]
    assert len(primary) == 1, pg_roles()
    return psycopg2.connect(pg_dsn(primary[0], user=lab["lab_db_user"], dbname=lab["lab_db_name"]))


def traefik_pids(lab_host, host):
    """PIDs of the gateway (Traefik) among the host's own processes (its own PID namespace)."""
    res = lab_host.execute(host, ["python3", "-c", "import os\nfor p in os.listdir('/proc'):\n"
                                  "    try:\n        exe = os.readlink('/proc/%s/exe' % p)\n    except OSError:\n        continue\n"
                                  "    if exe == '" + TRAEFIK + "':\n        print(p)"])
    return [int(p) for p in res.stdout.split()]


def start_gateway(lab_host, host):
    """Start the host's Traefik the way its init does (same binary, static configuration and log)."""
    lab_host.execute(host, ["sh", "-c", "setsid %s --configfile=/usr/local/lib/mcp-lab/traefik.yml "
                                        ">>/run/mcp-lab/logs/traefik.log 2>&1 </dev/null &" % TRAEFIK])


@pytest.fixture
def gateway_restart(lab, lab_host):
    """Restart one host's gateway process (stop it, wait until its port is closed, start it); it runs again afterwards."""
    restarted = []

    def restart(host):
        pids = traefik_pids(lab_host, host)
        assert len(pids) == 1, (host, pids)
        restarted.append(host)
        lab_host.execute(host, ["kill", str(pids[0])])
        wait_until(lambda: get(gw(lab, host, "git"), timeout=1)[0] is None, timeout=20, what="%s's gateway stopped" % host)
        start_gateway(lab_host, host)
        new = wait_until(lambda: traefik_pids(lab_host, host), timeout=10, what="%s's gateway process started" % host)
        assert new != pids
    yield restart
    for host in restarted:
        if not traefik_pids(lab_host, host):
            start_gateway(lab_host, host)
        wait_until(lambda h=host: get(gw(lab, h, "git"), timeout=2)[0] in (200, 503), timeout=30,
                   what="%s's gateway answering" % host)


@pytest.fixture(scope="module")
def fleet_lock(lab):
    """Hold the fleet lock (waiting up to 10 min for other operations) while this module runs."""
    from ansible_collections.mcp.platform.plugins.module_utils import fleet_lock as fl
    path = os.path.join(lab["lab_dir"], "fleet.lock")  # mcp_fleet_lock_path of the lab inventory, on the controller
    owner = "pytest-maintenance-%s" % uuid.uuid4().hex[:8]
    deadline = time.time() + 600
    while True:
        try:
            fl.acquire(path, owner, "integration tests: maintenance windows", ttl=900)
            break
        except fl.LockError:
            assert time.time() < deadline, "the fleet lock stayed taken for 10 minutes"
            time.sleep(2)
    yield owner
    fl.release(path, owner)


@pytest.fixture
def maintenance(playbook, fleet_lock):
    """Run maintenance.yml under the held lock; ends every window afterwards."""
    def run(*extra, check=True):
        return playbook("maintenance.yml", "-e", "maintenance_lock_owner=%s" % fleet_lock,
                        "-e", "maintenance_lock_release=false", *extra, check=check)
    yield run
    run("-e", "maintenance_action=disable")


def test_enable_partial_maintenance_then_gateway_restart_then_disable(lab, maintenance, gateway_restart):
    message = "Planned maintenance %s" % uuid.uuid4().hex[:6]
    maintenance("-e", "maintenance_action=enable", "-e", "services=filesystem,postgres", "-e", json.dumps({"message": message}),
                "-e", "retry_after=120", "-e", "ttl=600")
    # Within 2 s of the playbook returning, every gateway answers 503 for filesystem, with the message.
    assert wait_status(lab, "filesystem", 503, timeout=2.0) <= 2.0
    for host in HOSTS:
        code, headers, body = get(gw(lab, host, "filesystem"))
        assert code == 503 and message in body, (host, code, body)
        assert 0 < int(headers["Retry-After"]) <= 120
        assert get(gw(lab, host, "git"))[0] == 200, host
    # The database: writes fail as read-only, reads work.
    import psycopg2
    conn = db_connect(lab)
    try:
        with conn.cursor() as cur:
            cur.execute("select count(*) from tools")
            assert cur.fetchone()[0] >= 1
        conn.rollback()
        with pytest.raises(psycopg2.Error) as err, conn.cursor() as cur:
            cur.execute("create table maintenance_probe (x int)")
        assert "read-only" in str(err.value)
    finally:
        conn.close()
    # Status: a readable table, and the textfile metrics.
    out = maintenance("-e", "maintenance_action=status").stdout
    for host in HOSTS:
        assert host in out
    assert "SINCE" in out and "UNTIL" in out and "postgres" in out and "read-only" in out
    with open(host_path("mcp-2", "/var/lib/mcp/metrics/mcp_maintenance.prom")) as f:
        prom = f.read()
    assert 'mcp_maintenance_active{host="mcp-2",service="filesystem"} 1' in prom
    assert 'mcp_maintenance_active{host="mcp-2",service="git"} 0' in prom
    assert 'mcp_maintenance_until_timestamp_seconds{host="mcp-2",service="filesystem"}' in prom
    # Restart mcp-1's gateway (the Traefik process on mcp-1): still in maintenance once it is back.
    gateway_restart("mcp-1")
    wait_status(lab, "git", 200, hosts=("mcp-1",), timeout=30)
    code, _headers, body = get(gw(lab, "mcp-1", "filesystem"))
    assert code == 503 and message in body
    # Disable (no services: everything) restores the gateways and the database.
    maintenance("-e", "maintenance_action=disable")
    wait_status(lab, "filesystem", 200, timeout=5)
    conn = db_connect(lab)
    try:
        with conn.cursor() as cur:
            cur.execute("create temp table maintenance_probe (x int)")
            cur.execute("insert into maintenance_probe values (1)")
        conn.commit()
    finally:
        conn.close()


def test_expiry_lifts_maintenance(lab, maintenance):
    maintenance("-e", "maintenance_action=enable", "-e", "services=git", "-e", json.dumps({"message": "short window"}), "-e", "ttl=20")
    with open(host_path("mcp-1", "/var/lib/mcp/maintenance.json")) as f:
        until = json.load(f)["services"]["git"]["until_ts"]
    assert until > time.time(), "the playbook took longer than the window"
    wait_status(lab, "git", 503, timeout=2)
    time.sleep(max(0.0, until - time.time()))
    # The responder drops the expired window on the next request and sends the client back (307) to the service.
    assert wait_status(lab, "git", 200, timeout=10) < 10
    out = maintenance("-e", "maintenance_action=status").stdout
    assert "No service in maintenance" in out


def test_unknown_service_is_refused_listing_the_known_ones(lab, maintenance):
    res = maintenance("-e", "maintenance_action=enable", "-e", "services=filesystem,nosuch", "-e", "message=x", check=False)
    assert res.returncode != 0
    assert "unknown service(s) nosuch; known services: filesystem, git, postgres" in res.stdout
    assert get(gw(lab, "mcp-1", "filesystem"))[0] == 200
