"""Rolling update and rollback against the running lab, under real traffic (issue 6).

The playbooks reach every MCP host over SSH and replace the replicas on that host's own engine; the tests look
at each host's engine (`engines`), its /etc/mcp and /var/lib/mcp (`host_path`), its gateway, and PostgreSQL on the
current primary (`pg_dsn`). The fleet lock is the controller's (mcp_fleet_lock_path: .lab/fleet.lock).

Every rollout here runs while tests/integration/loadgen.py sends real HTTP GETs through the gateways
(2 services x 30/s = 60 requests/s per gateway) and counts every failed request.
The tests run in file order and share the lab's state; the module finalizer leaves the lab on
1.0.0, healthy (rollback/deploy), whatever happened.
"""
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request

import pytest
from conftest import LAB_DIR, MCP_HOSTS, host_path, pg_dsn, pg_roles, run_playbook, wait_until
from loadgen import LoadGen, gateway_urls

pytestmark = pytest.mark.lab

HOSTS = list(MCP_HOSTS)
SERVICES = ["filesystem", "git"]
CONFIRM = ["-e", "update_confirm_staging_tested=true", "-e", "update_confirm_maintenance_window=true",
           "-e", "update_confirm_users_notified=true"]
# The pre-update backup belongs in production runs; here it would only cost time (tested by the backup role's tests).
FAST = ["-e", "update_backup=false"]
RATE_PER_URL = 30.0
# what the database held before the 1.1.0 update (its pre-update backup), for the rollback test's restore_db
PRE_UPDATE = {}


# ---------------------------------------------------------------------------------------------- helpers
def containers(engines, hosts=None):
    """{name: (id, version, host, status, health)} of every managed service container, from each host's own engine."""
    out = {}
    for host in hosts or HOSTS:
        for c in engines.containers(host).values():
            labels = c.labels
            if labels.get("io.mcp-platform.service") not in SERVICES:
                continue
            health = (c.attrs.get("State", {}).get("Health") or {}).get("Status")
            out[c.name] = (c.id, labels.get("io.mcp-platform.version"), labels.get("io.mcp-platform.host"), c.status, health)
    return out


def versions_on(engines, host):
    return sorted({v for _id, v, h, status, _hl in containers(engines, [host]).values() if h == host and status == "running"})


def ledger(host):
    path = host_path(host, "/var/lib/mcp/releases.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)["releases"]


def env_version(host):
    with open(host_path(host, "/etc/mcp/platform.env")) as f:
        for line in f:
            if line.startswith("VERSION="):
                return line.strip().split("=", 1)[1]
    return None


def gateway_versions(lab, host, service, n=12):
    addr = lab["lab_hosts"][host]
    seen = set()
    for _unused in range(n):
        url = "http://%s:%d/mcp/%s/version" % (addr, lab["lab_gateway_http_port"], service)
        with urllib.request.urlopen(url, timeout=5) as r:
            seen.add(json.loads(r.read())["version"])
    return seen


def lock_path():
    """mcp_fleet_lock_path of the lab inventory: the lock lives on the controller, not on a host."""
    return os.path.join(LAB_DIR, "fleet.lock")


def wait_lock_free(timeout=900):
    """Other engineers' jobs share the lab and its fleet lock: wait for it instead of failing."""
    deadline = time.time() + timeout
    while os.path.exists(lock_path()) and time.time() < deadline:
        time.sleep(2)
    assert not os.path.exists(lock_path()), "the fleet lock is still held: %s" % open(lock_path()).read()


def snapshot(engines):
    return {
        "containers": {n: (i, v, s) for n, (i, v, _h, s, _hl) in containers(engines).items()},
        "ledgers": {h: ledger(h) for h in HOSTS},
        "env": {h: env_version(h) for h in HOSTS},
        "our lock": our_lock(),
    }


def our_lock():
    """The fleet lock if an update or rollback holds it (other jobs on the shared lab take it too)."""
    try:
        with open(lock_path()) as f:
            lock = json.load(f)
    except (OSError, ValueError):
        return None
    return lock if str(lock.get("operation", "")).startswith(("update", "rollback")) else None


def under_load(lab, fn, *args, **kwargs):
    urls = gateway_urls(lab["lab_hosts"].values(), SERVICES, lab["lab_gateway_http_port"])
    gen = LoadGen(urls, rate=RATE_PER_URL, max_duration=600, workers_per_url=3).start()
    try:
        res = fn(*args, **kwargs)
    finally:
        stats = gen.stop()
    return res, stats


def assert_rate(stats, lab):
    per_gateway = {}
    for url, s in stats["per_url"].items():
        gw = url.split("/mcp/")[0]
        per_gateway[gw] = per_gateway.get(gw, 0) + s["rate"]
    assert all(r >= 50 for r in per_gateway.values()), per_gateway


def update(version, *extra, check=False, wait=True):
    if wait:
        wait_lock_free()
    return run_playbook("update.yml", "-e", "version=%s" % version, *(CONFIRM + FAST + list(extra)), check=check)


# ---------------------------------------------------------------------------------------------- fixture
@pytest.fixture(scope="module")
def lab_at_100(lab, engines):
    wait_lock_free()
    if any(v != lab["lab_initial_version"] for _i, v, _h, _s, _hl in containers(engines).values()):
        run_playbook("rollback.yml", "-e", "version=%s" % lab["lab_initial_version"], "-e", "watch=0", "-e", "serial=3")
    yield lab
    # Leave the lab as we found it: 1.0.0 everywhere, healthy, lock free.
    initial = lab["lab_initial_version"]
    if all(v == initial for _i, v, _h, _s, _hl in containers(engines).values()) and \
            all(env_version(h) == initial for h in HOSTS):
        return
    wait_lock_free(300)
    res = run_playbook("rollback.yml", "-e", "version=%s" % initial, "-e", "watch=0", "-e", "serial=3", check=False)
    if res.returncode != 0:
        run_playbook("deploy.yml", "-e", "deploy_version=%s" % initial)


# ---------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("args,check", [
    (["-e", "version=1.1"], "version syntax"),
    (["-e", "version=9.9.9"], "image exists"),
    (["-e", "version=1.1.0", "-e", '{"services": ["filesystem", "nope"]}'], "known service"),
    # extra vars given later win: the survey answer "no" to one of the manual's questions
    (["-e", "version=1.1.0", "-e", "update_confirm_users_notified=false"], "confirmation update_confirm_users_notified"),
    (["-e", "version=1.1.0", "-e", "update_release_notes_file={notes}"], "breaking changes acknowledged"),
])
def test_bad_input_refused_before_anything_changed(lab_at_100, engines, tmp_path, args, check):
    notes = tmp_path / "release-notes.yml"
    notes.write_text('"1.1.0":\n  breaking_changes: ["the git service drops the legacy /v0 API"]\n')
    args = [a.replace("{notes}", str(notes)) for a in args]
    before = snapshot(engines)
    wait_lock_free()
    res = run_playbook("update.yml", *(CONFIRM + FAST + args), check=False)
    assert res.returncode != 0
    assert "check '%s' failed" % check in res.stdout, res.stdout[-3000:]
    if "release_notes" in args[-1]:
        assert "the git service drops the legacy /v0 API" in res.stdout
    assert snapshot(engines) == before


def test_rollback_to_a_version_not_in_the_registry_refused_before_anything_changed(lab_at_100, engines):
    before = snapshot(engines)
    wait_lock_free()
    res = run_playbook("rollback.yml", "-e", "version=9.9.9", "-e", "watch=0", check=False)
    assert res.returncode != 0
    assert "check 'image exists' failed" in res.stdout, res.stdout[-3000:]
    # the full reference of an image that is not there, as the registry was asked for it
    assert "/mcp-platform/filesystem:9.9.9" in res.stdout
    assert snapshot(engines) == before


def test_update_to_110_without_a_failed_request(lab_at_100, engines):
    # all three hosts in one batch to keep the module's runtime down; batches of one host (the default) are what
    # the 1.2.0 and 1.3.0 tests below run
    # with the pre-update backup (the production default), which the rollback test below restores
    PRE_UPDATE["migrations"] = applied_migrations(lab_at_100)
    res, stats = under_load(lab_at_100, update, "1.1.0", "-e", "watch=3", "-e", "serial=3", "-e", "update_backup=true")
    assert res.returncode == 0, res.stdout[-5000:]
    assert_rate(stats, lab_at_100)
    assert stats["failed"] == 0, stats["failures"]
    for host in HOSTS:
        assert versions_on(engines, host) == ["1.1.0"]
        for svc in SERVICES:
            assert gateway_versions(lab_at_100, host, svc) == {"1.1.0"}
        assert env_version(host) == "1.1.0"
        last = ledger(host)[-1]
        assert (last["action"], last["version"], last["previous_version"], last["result"]) == ("update", "1.1.0", "1.0.0", "success")
        assert last["backup"]["name"].startswith("pre-update-1.1.0-"), last
    n = sum(1 for c in containers(engines).values() if c[3] == "running")
    assert n == len(HOSTS) * len(SERVICES) * 2
    # migrations ran once (run_once), with the 1.1.0 image, and the database is at its target
    assert res.stdout.count("TASK [mcp.platform.update : Migrations | run") == 1
    applied = applied_migrations(lab_at_100)
    assert "003" in applied and len(applied) == len(set(applied))


def test_update_to_running_version_replaces_nothing(lab_at_100, engines):
    before = snapshot(engines)
    res = update("1.1.0", "-e", "watch=3", check=True)
    after = snapshot(engines)
    assert after["containers"] == before["containers"]
    assert after["ledgers"] == before["ledgers"]
    recap = re.findall(r"^(mcp-\d)\s+: ok=\d+\s+changed=(\d+)", res.stdout, re.M)
    assert sorted(recap) == [(h, "0") for h in HOSTS], recap


def replaced(before, after, hosts):
    """Containers of ``hosts`` that are gone or were replaced (other jobs on the shared lab may stop or start them)."""
    return [n for n, c in before.items() if c[2] in hosts and (after.get(n) or (None,) * 5)[:3] != c[:3]]


def test_unhealthy_120_rolls_back_first_host_only(lab_at_100, engines):
    before = containers(engines)
    res, stats = under_load(lab_at_100, update, "1.2.0", "-e", "watch=3")
    assert res.returncode != 0
    # services are replaced side by side: whichever first replica fails its gate first stops the other one
    assert re.search(r"mcp-1, service (filesystem|git) replica 1 at 1\.2\.0: check 'container health' failed", res.stdout), \
        res.stdout[-4000:]
    assert "mcp-1 was rolled back to 1.1.0" in res.stdout
    assert stats["failed"] == 0, stats["failures"]
    assert versions_on(engines, "mcp-1") == ["1.1.0"]
    assert replaced(before, containers(engines), ("mcp-2", "mcp-3")) == []   # hosts 2-3 untouched
    assert ledger("mcp-1")[-1]["result"] == "rolled_back"
    assert ledger("mcp-2")[-1]["version"] == "1.1.0"
    assert env_version("mcp-1") == "1.1.0"
    assert our_lock() is None


def test_130_rolled_back_by_watch_and_a_second_update_refused(lab_at_100, engines):
    before = containers(engines)
    box = {}

    def second():
        # As soon as the first update holds the fleet lock, a second update must refuse, naming the holder.
        deadline = time.time() + 120
        while time.time() < deadline and not os.path.exists(lock_path()):
            time.sleep(0.2)
        with open(lock_path()) as f:
            box["holder"] = json.load(f)["owner"]
        box["res"] = update("1.1.0", "-e", "watch=0", wait=False)

    t = threading.Thread(target=second)
    t.start()
    # one service (2 replicas) keeps it short; the watch outlasts the 20 s after which 1.3.0 degrades
    res, stats = under_load(lab_at_100, update, "1.3.0", "-e", "watch=30", "-e", '{"services": ["filesystem"]}')
    t.join(300)
    assert res.returncode != 0
    assert "post-cutover watch on mcp-1" in res.stdout, res.stdout[-4000:]
    assert "mcp-1 was rolled back to 1.1.0" in res.stdout
    assert versions_on(engines, "mcp-1") == ["1.1.0"]
    assert replaced(before, containers(engines), ("mcp-2", "mcp-3")) == []
    assert ledger("mcp-1")[-1]["result"] == "rolled_back"
    assert ledger("mcp-2")[-1]["version"] == "1.1.0"
    # the second update
    assert box["res"].returncode != 0
    assert "held by %s" % box["holder"] in box["res"].stdout
    assert "update to 1.3.0" in box["res"].stdout
    # 1.3.0 replicas pass every gate and degrade 20 s after their start. The 1.1.0 replicas kept running behind the
    # guard: the gateway failed over to them the moment the new ones turned unhealthy, so not one request failed
    # (mcp-1 at 50 requests/s and more, like every gateway).
    assert_rate(stats, lab_at_100)
    print("1.3.0 under load: %d of %d requests failed" % (stats["failed"], stats["requests"]))
    assert stats["failed"] == 0, stats["failures"][:20]
    # the guard is gone and the gateway routes through the Docker provider again, to 1.1.0 only
    assert not os.path.exists(host_path("mcp-1", "/var/lib/mcp/gateway/dynamic/mcp-guard-filesystem.yml"))
    assert gateway_versions(lab_at_100, "mcp-1", "filesystem") == {"1.1.0"}


def db(lab):
    """The platform database on the current primary (pg-1 unless a failover test moved it)."""
    import psycopg2
    primary = [n for n, r in pg_roles().items() if r == "primary"]
    assert len(primary) == 1, pg_roles()
    return psycopg2.connect(pg_dsn(primary[0], user=lab["lab_db_user"], dbname=lab["lab_db_name"]))


def applied_migrations(lab):
    """Versions in schema_migrations; [] before the first migration ever ran (the lab's seed has no such table)."""
    with db(lab) as conn, conn.cursor() as cur:
        cur.execute("select to_regclass('schema_migrations') is not null")
        if not cur.fetchone()[0]:
            return []
        cur.execute("select version from schema_migrations order by version")
        return [r[0] for r in cur.fetchall()]


def _drop_probe(lab):
    with db(lab) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM schema_migrations WHERE version = '999'")
        cur.execute("DROP TABLE IF EXISTS after_update_probe")


def test_rollback_without_a_version_goes_back_to_100(lab_at_100, engines, request):
    # all hosts in one batch (batching itself is shown by the 1.2.0 test): keeps the module's runtime down;
    # restore_db=true puts the 1.1.0 deployment's pre-update backup back, in maintenance (the gateway answers 503)
    # what 1.1.0 would write after its update: a migration of its own, a table with a foreign key to an older one
    with db(lab_at_100) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO schema_migrations (version, applied_at) VALUES ('999', now()) ON CONFLICT DO NOTHING")
        cur.execute("CREATE TABLE IF NOT EXISTS after_update_probe (id int PRIMARY KEY, tool_id int REFERENCES tools(id))")
    request.addfinalizer(lambda: _drop_probe(lab_at_100))  # a failed run must not leave it for the next backup
    wait_lock_free()
    res, stats = under_load(lab_at_100, run_playbook, "rollback.yml", "-e", "watch=2", "-e", "serial=3",
                            "-e", "restore_db=true", check=False)
    assert res.returncode == 0, res.stdout[-5000:]
    # the database is back where the pre-update backup of the 1.1.0 deployment left it
    assert "999" not in applied_migrations(lab_at_100)
    if "migrations" in PRE_UPDATE:
        assert applied_migrations(lab_at_100) == PRE_UPDATE["migrations"]
    with db(lab_at_100) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('after_update_probe')")
        assert cur.fetchone()[0] is None
    # the only failed requests are the maintenance window's answers while the database was restored: 503 with
    # Retry-After, and the responder's 307 back to the same URL in the instant between the window's end and the
    # gateway's reload (the load generator counts answers, it does not follow redirects)
    assert set(stats["causes"]) <= {"HTTP 503", "HTTP 307"}, stats["causes"]
    print("rollback with restore_db under load: %s" % stats["causes"])
    for host in HOSTS:
        assert versions_on(engines, host) == ["1.0.0"]
        assert env_version(host) == "1.0.0"
        last = ledger(host)[-1]
        assert (last["action"], last["version"], last["previous_version"], last["result"]) == ("rollback", "1.0.0", "1.1.0", "success")
        for svc in SERVICES:
            assert gateway_versions(lab_at_100, host, svc) == {"1.0.0"}


def gateway_status(lab, host, service):
    url = "http://%s:%d/mcp/%s/version" % (lab["lab_hosts"][host], lab["lab_gateway_http_port"], service)
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def start_times(engines, host):
    """{name: (id, version, StartedAt)} of a host's service containers (all states)."""
    return {n: (c.id, c.labels.get("io.mcp-platform.version"), c.attrs["State"]["StartedAt"])
            for n, c in engines.containers(host).items() if c.labels.get("io.mcp-platform.service") in SERVICES}


def test_host_lost_mid_batch_stops_the_update_before_the_next_host(lab_at_100, engines, lab_host):
    """An update (serial 1) loses mcp-2 while it replaces mcp-2's replicas: mcp-2 reported, mcp-3 never touched,
    the lock released, mcp-1 and mcp-3 serving throughout; then mcp-2 is booted and the lab goes back to 1.0.0."""
    lab = lab_at_100
    initial, target = lab["lab_initial_version"], "1.1.0"
    if any(v != initial for _i, v, _h, _s, _hl in containers(engines).values()) or any(env_version(h) != initial for h in HOSTS):
        wait_lock_free()
        run_playbook("rollback.yml", "-e", "version=%s" % initial, "-e", "watch=0", "-e", "serial=3")
    mcp3_before, mcp3_ledger = start_times(engines, "mcp-3"), ledger("mcp-3")
    assert {v for _i, v, _t in mcp3_before.values()} == {initial}
    survivors = [lab["lab_hosts"][h] for h in ("mcp-1", "mcp-3")]
    box = {}

    def run_update():
        # no migrations: this test is about the hosts, and the database then needs no restoring afterwards
        box["res"] = update(target, "-e", "serial=1", "-e", "watch=3", "-e", "update_migrations=false", wait=False)

    wait_lock_free()
    gen = LoadGen(gateway_urls(survivors, SERVICES, lab["lab_gateway_http_port"]), rate=RATE_PER_URL, max_duration=900,
                  workers_per_url=3).start()
    runner = threading.Thread(target=run_update, daemon=True)
    runner.start()
    try:
        # The trigger: a replica of the target version on mcp-2's own engine. mcp_rollout creates it as the first step
        # of mcp-2's replacement (start-first), after mcp-1's batch is complete (serial 1) and before mcp-2's old
        # replicas are touched; pulls (every host, earlier) create no container and the migrations job runs on mcp-1.
        def mcp2_replacement_begun():
            if not runner.is_alive():
                return "the playbook ended first"
            return sorted(engines.containers("mcp-2", version=target))
        begun = wait_until(mcp2_replacement_begun, timeout=900, interval=0.2, what="a %s replica on mcp-2" % target)
        assert begun != "the playbook ended first", box["res"].stdout[-5000:]
        mcp1_at_kill = versions_on(engines, "mcp-1")
        lab_host.kill("mcp-2")
        killed_at, t_kill = gen.stats(), time.monotonic()
        runner.join(900)
        ended_after = time.monotonic() - t_kill
        assert not runner.is_alive(), "update.yml still runs 900 s after mcp-2 was lost"
        # the playbook may end within a second of the loss: keep sampling mcp-1 and mcp-3 until each URL has
        # answered another 10 s worth of requests since the kill
        wait_until(lambda: all(s["ok"] + s["failed"] >= killed_at["per_url"][u]["ok"] + killed_at["per_url"][u]["failed"] + 10 * RATE_PER_URL
                               for u, s in gen.stats()["per_url"].items()), timeout=60, interval=0.5, what="10 s more of load after the kill")
    finally:
        stats = gen.stop()
    res = box["res"]
    out = res.stdout
    print("killed mcp-2 once %s existed there (mcp-1 then ran %s); update.yml ended %.1f s later; load on mcp-1/mcp-3: %d requests, %s"
          % (begun, mcp1_at_kill, ended_after, stats["requests"], stats["causes"]))

    # the playbook fails and names mcp-2 as unreachable, in Ansible's own report and in the role's verdict
    assert res.returncode != 0
    assert re.search(r"^fatal: \[mcp-2\]: UNREACHABLE!", out, re.M), out[-5000:]
    assert re.search(r"^mcp-2\s+:.* unreachable=1 ", out, re.M), out[-1500:]
    flat = " ".join(out.split())
    assert "update to %s stopped: mcp-2 was lost (unreachable) during its batch," % target in flat, out[-5000:]
    assert "no later host was touched; the fleet lock is released; mcp-1 is at %s (its batch completed)" % target in flat
    assert "the fleet lock is released; mcp-3 was not changed" in flat
    # no later host was touched: mcp-3's containers are the same ones, started at the same times, at 1.0.0
    assert not re.search(r"^changed: \[mcp-3\]|(rollout|replace_host)\.yml for .*mcp-3", out, re.M), out[-5000:]
    assert re.search(r"^mcp-3\s+: ok=\d+\s+changed=0 ", out, re.M), out[-1500:]
    assert start_times(engines, "mcp-3") == mcp3_before
    assert env_version("mcp-3") == initial
    assert ledger("mcp-3") == mcp3_ledger
    # mcp-1's batch was complete before mcp-2's began: the role keeps it at 1.1.0 (it rolls back only the host whose
    # own replacement failed), recorded as a successful update
    assert mcp1_at_kill == [target]
    assert versions_on(engines, "mcp-1") == [target]
    assert env_version("mcp-1") == target
    last = ledger("mcp-1")[-1]
    assert (last["action"], last["version"], last["previous_version"], last["result"]) == ("update", target, initial, "success")
    for svc in SERVICES:
        assert gateway_versions(lab, "mcp-1", svc) == {target}
    # the fleet lock is released
    assert our_lock() is None and not os.path.exists(lock_path())
    # mcp-1 and mcp-3 served every request through their gateways, before and after mcp-2 was lost
    assert stats["failed"] == 0, stats["failures"][:10]
    for url, s in stats["per_url"].items():
        assert s["ok"] >= killed_at["per_url"][url]["ok"] + 10 * RATE_PER_URL, (url, s, killed_at["per_url"][url])

    # mcp-2 back, then the lab back to 1.0.0 (mcp-2's half-done replacement taken out by the rollback)
    lab_host.boot("mcp-2")
    engines._clients.pop("mcp-2", None)   # its engine socket is a new one after the boot
    wait_until(lambda: all(gateway_status(lab, "mcp-2", s) == 200 for s in SERVICES), timeout=120, what="mcp-2 serving again")
    run_playbook("rollback.yml", "-e", "version=%s" % initial, "-e", "watch=0", "-e", "serial=3", "--limit", "mcp-1,mcp-2")
    for host in HOSTS:
        ctrs = containers(engines, [host])
        assert sorted((v, s) for _i, v, _h, s, _hl in ctrs.values()) == [(initial, "running")] * len(SERVICES) * 2, (host, ctrs)
        assert env_version(host) == initial
        for svc in SERVICES:
            assert gateway_versions(lab, host, svc) == {initial}
    assert our_lock() is None
