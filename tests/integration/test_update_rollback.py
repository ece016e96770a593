"""Rolling update and rollback against the running lab, under real traffic (issue 6).

Every rollout here runs while tests/integration/loadgen.py sends real HTTP GETs through all three
gateways (2 services x 30/s = 60 requests/s per gateway) and counts every failed request.
The tests run in file order and share the lab's state; the module finalizer leaves the lab on
1.0.0, healthy (rollback/deploy), whatever happened.
"""
import json
import os
import re
import threading
import time
import urllib.request

import pytest

from conftest import LAB_DIR, run_playbook
from loadgen import LoadGen, gateway_urls

pytestmark = pytest.mark.lab

HOSTS = ["mcp-1", "mcp-2", "mcp-3"]
SERVICES = ["filesystem", "git"]
CONFIRM = ["-e", "update_confirm_staging_tested=true", "-e", "update_confirm_maintenance_window=true",
           "-e", "update_confirm_users_notified=true"]
# The pre-update backup belongs in production runs; here it would only cost time (tested by the backup role's tests).
FAST = ["-e", "update_backup=false"]
RATE_PER_URL = 30.0


# ---------------------------------------------------------------------------------------------- helpers
def containers(docker_client):
    """{name: (id, version, health)} of every managed service container."""
    out = {}
    for c in docker_client.containers.list(all=True, filters={"label": "io.mcp-platform.managed=true"}):
        labels = c.labels
        if labels.get("io.mcp-platform.service") not in SERVICES:
            continue
        health = (c.attrs.get("State", {}).get("Health") or {}).get("Status")
        out[c.name] = (c.id, labels.get("io.mcp-platform.version"), labels.get("io.mcp-platform.host"), c.status, health)
    return out


def versions_on(docker_client, host):
    return sorted({v for _id, v, h, status, _hl in containers(docker_client).values() if h == host and status == "running"})


def host_file(host, *parts):
    return os.path.join(LAB_DIR, "hosts", host, *parts)


def ledger(host):
    path = host_file(host, "var", "lib", "mcp", "releases.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)["releases"]


def env_version(host):
    with open(host_file(host, "etc", "mcp", "platform.env")) as f:
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
    return os.path.join(LAB_DIR, "fleet.lock")


def wait_lock_free(timeout=900):
    """Other engineers' jobs share the lab and its fleet lock: wait for it instead of failing."""
    deadline = time.time() + timeout
    while os.path.exists(lock_path()) and time.time() < deadline:
        time.sleep(2)
    assert not os.path.exists(lock_path()), "the fleet lock is still held: %s" % open(lock_path()).read()


def snapshot(docker_client):
    return {
        "containers": {n: (i, v, s) for n, (i, v, _h, s, _hl) in containers(docker_client).items()},
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
def lab_at_100(lab, docker_client):
    wait_lock_free()
    if any(v != lab["lab_initial_version"] for _i, v, _h, _s, _hl in containers(docker_client).values()):
        run_playbook("rollback.yml", "-e", "version=%s" % lab["lab_initial_version"], "-e", "watch=0", "-e", "serial=3")
    yield lab
    # Leave the lab as we found it: 1.0.0 everywhere, healthy, lock free.
    initial = lab["lab_initial_version"]
    if all(v == initial for _i, v, _h, _s, _hl in containers(docker_client).values()) and \
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
def test_bad_input_refused_before_anything_changed(lab_at_100, docker_client, tmp_path, args, check):
    notes = tmp_path / "release-notes.yml"
    notes.write_text('"1.1.0":\n  breaking_changes: ["the git service drops the legacy /v0 API"]\n')
    args = [a.replace("{notes}", str(notes)) for a in args]
    before = snapshot(docker_client)
    wait_lock_free()
    res = run_playbook("update.yml", *(CONFIRM + FAST + args), check=False)
    assert res.returncode != 0
    assert "check '%s' failed" % check in res.stdout, res.stdout[-3000:]
    if "release_notes" in args[-1]:
        assert "the git service drops the legacy /v0 API" in res.stdout
    assert snapshot(docker_client) == before


def test_update_to_110_without_a_failed_request(lab_at_100, docker_client):
    # all three hosts in one batch to keep the module's runtime down; batches of one host (the default) are what
    # the 1.2.0 and 1.3.0 tests below run
    # with the pre-update backup (the production default), which the rollback test below restores
    res, stats = under_load(lab_at_100, update, "1.1.0", "-e", "watch=3", "-e", "serial=3", "-e", "update_backup=true")
    assert res.returncode == 0, res.stdout[-5000:]
    assert_rate(stats, lab_at_100)
    assert stats["failed"] == 0, stats["failures"]
    for host in HOSTS:
        assert versions_on(docker_client, host) == ["1.1.0"]
        for svc in SERVICES:
            assert gateway_versions(lab_at_100, host, svc) == {"1.1.0"}
        assert env_version(host) == "1.1.0"
        last = ledger(host)[-1]
        assert (last["action"], last["version"], last["previous_version"], last["result"]) == ("update", "1.1.0", "1.0.0", "success")
        assert last["backup"]["name"].startswith("pre-update-1.1.0-"), last
    n = sum(1 for c in containers(docker_client).values() if c[3] == "running")
    assert n == len(HOSTS) * len(SERVICES) * 2
    # migrations ran once (run_once), with the 1.1.0 image, and the database is at its target
    assert res.stdout.count("TASK [mcp.platform.update : Migrations | run") == 1
    applied = applied_migrations(lab_at_100)
    assert "003" in applied and len(applied) == len(set(applied))


def test_update_to_running_version_replaces_nothing(lab_at_100, docker_client):
    before = snapshot(docker_client)
    res = update("1.1.0", "-e", "watch=3", check=True)
    after = snapshot(docker_client)
    assert after["containers"] == before["containers"]
    assert after["ledgers"] == before["ledgers"]
    recap = re.findall(r"^(mcp-\d)\s+: ok=\d+\s+changed=(\d+)", res.stdout, re.M)
    assert sorted(recap) == [(h, "0") for h in HOSTS], recap


def replaced(before, after, hosts):
    """Containers of ``hosts`` that are gone or were replaced (other jobs on the shared lab may stop or start them)."""
    return [n for n, c in before.items() if c[2] in hosts and (after.get(n) or (None,) * 5)[:3] != c[:3]]


def test_unhealthy_120_rolls_back_first_host_only(lab_at_100, docker_client):
    before = containers(docker_client)
    res, stats = under_load(lab_at_100, update, "1.2.0", "-e", "watch=3")
    assert res.returncode != 0
    # services are replaced side by side: whichever first replica fails its gate first stops the other one
    assert re.search(r"mcp-1, service (filesystem|git) replica 1 at 1\.2\.0: check 'container health' failed", res.stdout), \
        res.stdout[-4000:]
    assert "mcp-1 was rolled back to 1.1.0" in res.stdout
    assert stats["failed"] == 0, stats["failures"]
    assert versions_on(docker_client, "mcp-1") == ["1.1.0"]
    assert replaced(before, containers(docker_client), ("mcp-2", "mcp-3")) == []   # hosts 2-3 untouched
    assert ledger("mcp-1")[-1]["result"] == "rolled_back"
    assert ledger("mcp-2")[-1]["version"] == "1.1.0"
    assert env_version("mcp-1") == "1.1.0"
    assert our_lock() is None


def test_130_rolled_back_by_watch_and_a_second_update_refused(lab_at_100, docker_client):
    before = containers(docker_client)
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
    assert versions_on(docker_client, "mcp-1") == ["1.1.0"]
    assert replaced(before, containers(docker_client), ("mcp-2", "mcp-3")) == []
    assert ledger("mcp-1")[-1]["result"] == "rolled_back"
    assert ledger("mcp-2")[-1]["version"] == "1.1.0"
    # the second update
    assert box["res"].returncode != 0
    assert "held by %s" % box["holder"] in box["res"].stdout
    assert "update to 1.3.0" in box["res"].stdout
    # 1.3.0 replicas pass every gate and degrade 20 s after their start: requests can fail between the degradation
    # and the rollback (both replicas of a service degraded); reported, not asserted.
    print("1.3.0 under load: %d of %d requests failed" % (stats["failed"], stats["requests"]))


def db(lab):
    import psycopg2
    return psycopg2.connect(host="127.0.0.1", port=lab["lab_postgres_primary_port"], user=lab["lab_db_user"],
                            password=lab["lab_db_password"], dbname=lab["lab_db_name"])


def applied_migrations(lab):
    with db(lab) as conn, conn.cursor() as cur:
        cur.execute("select version from schema_migrations order by version")
        return [r[0] for r in cur.fetchall()]


def test_rollback_without_a_version_goes_back_to_100(lab_at_100, docker_client):
    # all hosts in one batch (batching itself is shown by the 1.2.0 test): keeps the module's runtime down;
    # restore_db=true puts the 1.1.0 deployment's pre-update backup back, in maintenance (the gateway answers 503)
    # what 1.1.0 would write after its update: a migration of its own, a table with a foreign key to an older one
    with db(lab_at_100) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO schema_migrations (version, applied_at) VALUES ('999', now()) ON CONFLICT DO NOTHING")
        cur.execute("CREATE TABLE IF NOT EXISTS after_update_probe (id int PRIMARY KEY, tool_id int REFERENCES tools(id))")
    wait_lock_free()
    res, stats = under_load(lab_at_100, run_playbook, "rollback.yml", "-e", "watch=2", "-e", "serial=3",
                            "-e", "restore_db=true", check=False)
    assert res.returncode == 0, res.stdout[-5000:]
    # the database is back where the pre-update backup of the 1.1.0 deployment left it
    assert "999" not in applied_migrations(lab_at_100)
    with db(lab_at_100) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('after_update_probe')")
        assert cur.fetchone()[0] is None
    # the only failed requests are the maintenance window's answers while the database was restored: 503 with
    # Retry-After, and the responder's 307 back to the same URL in the instant between the window's end and the
    # gateway's reload (the load generator counts answers, it does not follow redirects)
    assert set(stats["causes"]) <= {"HTTP 503", "HTTP 307"}, stats["causes"]
    print("rollback with restore_db under load: %s" % stats["causes"])
    for host in HOSTS:
        assert versions_on(docker_client, host) == ["1.0.0"]
        assert env_version(host) == "1.0.0"
        last = ledger(host)[-1]
        assert (last["action"], last["version"], last["previous_version"], last["result"]) == ("rollback", "1.0.0", "1.1.0", "success")
        for svc in SERVICES:
            assert gateway_versions(lab_at_100, host, svc) == {"1.0.0"}
