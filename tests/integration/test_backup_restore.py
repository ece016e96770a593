"""Backup and restore through the playbooks, against the running lab (no mocks).

Every test writes under its own S3 prefix (``itest-<random>``, removed afterwards) and its own run-record folder on
the controller, restores one host (``ITEST_HOST``) and the shared database, and leaves the hosts' services running
and healthy on the version they had.

Where things are: the modules run on the MCP hosts (over SSH, in the node venv) and reach PostgreSQL at pg-1's
address and S3 on the infrastructure address; the tests read the same things from the controller: the bucket
(boto3 on lab["s3_endpoint"]), the database (pg_dsn on the primary), each host's files (host_path, the lab's
bind mounts of its /etc/mcp and /var/lib/mcp) and its engine (the engines fixture). The fleet lock and the run
record are the controller's own files.
"""
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
import urllib.error
import urllib.request

import boto3
import psycopg2
import pytest
from conftest import LAB_DIR, MCP_HOSTS, adhoc_one, host_path, pg_dsn, pg_roles, wait_until
from support.trees import tree_state

pytestmark = pytest.mark.lab

ITEST_HOST = os.environ.get("MCP_ITEST_BACKUP_HOST", "mcp-2")
# the real fleet lock (waiting for it when busy); MCP_ITEST_FLEET_LOCK points elsewhere while developing in parallel
FLEET_LOCK = os.environ.get("MCP_ITEST_FLEET_LOCK", os.path.join(LAB_DIR, "fleet.lock"))
LOCK_WAIT = "180"
TEST_DIR = "itest-backup"  # our own files inside the host's data dir
STATE_FILES = ("last_backup.json", "last_restore.json")


# ----------------------------------------------------------------------------------------- helpers

def _host_dirs(host):
    """The host's own folders (production paths on the host), as the controller reads them."""
    return {"config": host_path(host, "/etc/mcp"), "state": host_path(host, "/var/lib/mcp"),
            "data": host_path(host, "/var/lib/mcp/data")}


def _report_dir(prefix):
    """The run record's folder on the controller for this prefix's runs (not the lab's own reports folder)."""
    return os.path.join(tempfile.gettempdir(), "mcp-itest-reports", prefix)


def _run_record(prefix):
    with open(os.path.join(_report_dir(prefix), "last_backup.json")) as fh:
        return json.load(fh)


def _s3(lab):
    return boto3.client("s3", endpoint_url=lab["s3_endpoint"], region_name="us-east-1",
                        aws_access_key_id=lab["lab_s3_access_key"], aws_secret_access_key=lab["lab_s3_secret_key"])


def _keys(s3, bucket, prefix):
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        out.extend(o["Key"] for o in page.get("Contents", []) or [])
    return out


def _remove_prefix(lab, name):
    s3 = _s3(lab)
    keys = _keys(s3, lab["lab_s3_bucket"], name)
    for start in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=lab["lab_s3_bucket"], Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]]})
    for up in s3.list_multipart_uploads(Bucket=lab["lab_s3_bucket"], Prefix=name + "/").get("Uploads", []) or []:
        s3.abort_multipart_upload(Bucket=lab["lab_s3_bucket"], Key=up["Key"], UploadId=up["UploadId"])
    shutil.rmtree(_report_dir(name), ignore_errors=True)


def _primary():
    roles = pg_roles()
    primary = [n for n, r in roles.items() if r == "primary"]
    if len(primary) != 1:
        raise psycopg2.OperationalError("no single PostgreSQL primary: %s" % roles)
    return primary[0]


@contextlib.contextmanager
def _pg(lab, db=None):
    """The superuser on the primary, from the controller (the roles reach the same node from the hosts)."""
    conn = psycopg2.connect(pg_dsn(_primary(), dbname=db or lab["lab_db_name"]))
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


def db_snapshot(lab):
    """Every row of every user table, sorted (as text), per table."""
    out = {}
    with _pg(lab) as conn:
        cur = conn.cursor()
        cur.execute("SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
                    "ORDER BY 1, 2")
        for schema, table in cur.fetchall():
            cur.execute('SELECT t::text FROM "%s"."%s" t' % (schema, table))
            out["%s.%s" % (schema, table)] = sorted(r[0] for r in cur.fetchall())
    return out


def containers(engines, host):
    """The host's platform containers, from its own engine (which holds only that host's)."""
    return engines.containers(host)


def wait_healthy(engines, host, timeout=180):
    deadline = time.time() + timeout
    while True:
        state = {n: (c.status, (c.attrs["State"].get("Health") or {}).get("Status", "healthy"))
                 for n, c in containers(engines, host).items()}
        if state and all(s == ("running", "healthy") for s in state.values()):
            return state
        if time.time() > deadline:
            raise AssertionError("services of %s not healthy after %ds: %s" % (host, timeout, state))
        time.sleep(2)


def extra(prefix, *more, limit=ITEST_HOST):
    argv = ["-e", "mcp_backup_s3_prefix=%s" % prefix, "-e", "mcp_fleet_lock_path=%s" % FLEET_LOCK,
            "-e", "fleet_lock_wait=%s" % LOCK_WAIT, "-e", "mcp_report_dir=%s" % _report_dir(prefix)]
    return argv + (["--limit", limit] if limit else []) + list(more)


def set_ids(output, what):
    return re.findall(r"%s set (\d{8}T\d{6}Z-[0-9a-f]{6})" % what, output)


@contextlib.contextmanager
def _state_files_kept(*hosts):
    """Put the hosts' last_backup.json / last_restore.json back afterwards."""
    saved = {}
    for host in hosts:
        for fname in STATE_FILES:
            path = os.path.join(_host_dirs(host)["state"], fname)
            saved[path] = open(path, "rb").read() if os.path.exists(path) else None
    try:
        yield saved
    finally:
        for path, body in saved.items():
            if body is None:
                if os.path.exists(path):
                    os.unlink(path)
            else:
                with open(path, "wb") as fh:
                    fh.write(body)


def wait_platform_ready(lab, timeout=600):
    """Wait until the fleet lock is free and the primary takes writes (other suites may hold the lab for a while)."""
    deadline = time.time() + timeout
    reason = None
    while time.time() < deadline:
        reason = None
        if os.path.exists(FLEET_LOCK):
            try:
                lock = json.load(open(FLEET_LOCK))
                if not lock.get("expires_ts") or lock["expires_ts"] > time.time():
                    reason = "fleet lock held by %s (%s)" % (lock.get("owner"), lock.get("operation"))
            except (OSError, ValueError):
                pass
        if reason is None:
            try:
                with _pg(lab) as conn:
                    cur = conn.cursor()
                    cur.execute("SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')")
                    recovery, read_only = cur.fetchone()
                    if recovery or read_only == "on":
                        reason = "primary in recovery or read-only"
            except psycopg2.Error as exc:
                reason = "primary down: %s" % str(exc).strip().splitlines()[0]
        if reason is None:
            return
        time.sleep(3)
    pytest.fail("the lab is not ready for a backup/restore test after %ds: %s" % (timeout, reason))


def _gateway_body(lab, host, service):
    url = "http://%s:%d/mcp/%s/health" % (lab["lab_hosts"][host], lab["lab_gateway_http_port"], service)
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except OSError as exc:
        return None, str(exc)


# ----------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def prefix(lab):
    """A private S3 prefix; removes its objects and puts the host's state files back afterwards."""
    wait_platform_ready(lab)
    name = "itest-%s" % secrets.token_hex(4)
    with _state_files_kept(ITEST_HOST):
        yield name
    _remove_prefix(lab, name)


@pytest.fixture(scope="module")
def backed_up(lab, prefix, playbook, engines):
    """Our own files (modes, owners, a symlink, binary data) in the host's data dir, then one backup run.

    The files are written through the lab's bind mount of the host's /var/lib/mcp (same inodes, same numeric owners
    as on the host); the backup module reads them on the host itself.
    """
    data = _host_dirs(ITEST_HOST)["data"]
    mine = os.path.join(data, TEST_DIR)
    shutil.rmtree(mine, ignore_errors=True)
    os.makedirs(os.path.join(mine, "sub", "deeper"))
    files = {
        "plain.txt": (b"hello backup\n" * 100, 0o644, 0, 0),
        "secret.key": (secrets.token_bytes(4096), 0o600, 1234, 2345),
        "sub/script.sh": (b"#!/bin/sh\necho ok\n", 0o750, 1000, 1000),
        "sub/deeper/blob.bin": (secrets.token_bytes(300000), 0o640, 0, 4321),
        "sub/to-delete.txt": (b"will be deleted\n", 0o644, 0, 0),
    }
    for rel, (body, mode, uid, gid) in files.items():
        path = os.path.join(mine, rel)
        with open(path, "wb") as fh:
            fh.write(body)
        os.chown(path, uid, gid)
        os.chmod(path, mode)
    os.symlink("plain.txt", os.path.join(mine, "link-to-plain"))
    os.chmod(os.path.join(mine, "sub"), 0o2770)
    os.chown(os.path.join(mine, "sub"), 0, 4321)

    wait_healthy(engines, ITEST_HOST)
    versions = sorted(set(c.labels["io.mcp-platform.version"] for c in containers(engines, ITEST_HOST).values()))
    before = {"db": db_snapshot(lab), "tree": tree_state(data, xattrs=False, links=False), "versions": versions}
    t0 = time.time()
    res = playbook("backup.yml", *extra(prefix))
    before["backup_seconds"] = time.time() - t0
    before["platform_sets"] = set_ids(res.stdout, "platform")
    before["host_sets"] = set_ids(res.stdout, "host")
    assert before["platform_sets"] and before["host_sets"], res.stdout[-3000:]
    yield before
    shutil.rmtree(mine, ignore_errors=True)


# ----------------------------------------------------------------------------------------- tests

def test_backup_writes_sets_manifest_last_and_last_backup_json(lab, prefix, backed_up):
    s3 = _s3(lab)
    bucket = lab["lab_s3_bucket"]
    pset, hset = backed_up["platform_sets"][0], backed_up["host_sets"][0]
    pkeys = _keys(s3, bucket, "%s/platform/%s" % (prefix, pset))
    hkeys = _keys(s3, bucket, "%s/hosts/%s/%s" % (prefix, ITEST_HOST, hset))
    assert "%s/platform/%s/manifest.json" % (prefix, pset) in pkeys
    assert "%s/platform/%s/postgres.pgdump.zst" % (prefix, pset) in pkeys
    assert {"%s/hosts/%s/%s/%s" % (prefix, ITEST_HOST, hset, k) for k in
            ("manifest.json", "config.tar.zst", "volumes.tar.zst", "verification.json")} <= set(hkeys)
    manifest = json.loads(s3.get_object(Bucket=bucket, Key="%s/platform/%s/manifest.json" % (prefix, pset))["Body"].read())
    label = manifest["label"]
    assert label.startswith("manual-")
    host_manifest = json.loads(s3.get_object(Bucket=bucket, Key="%s/hosts/%s/%s/manifest.json" % (prefix, ITEST_HOST, hset))["Body"].read())
    assert host_manifest["label"] == label
    # both sets were written on the host itself (over SSH), not on the controller
    assert manifest["host"].split(".")[0] == ITEST_HOST and host_manifest["host"].split(".")[0] == ITEST_HOST
    assert manifest["row_counts"] == {t: len(rows) for t, rows in backed_up["db"].items()}
    last = json.load(open(os.path.join(_host_dirs(ITEST_HOST)["state"], "last_backup.json")))
    assert last["status"] == "success" and last["name"] == label
    assert last["platform"]["set_id"] == pset and last["host"]["set_id"] == hset
    assert last["platform"]["verified"] is True and last["host"]["verified"] is True
    # the run record on the controller says the same
    record = _run_record(prefix)
    assert record["status"] == "success" and record["name"] == label and record["failed_hosts"] == []
    assert record["hosts"] == {ITEST_HOST: {"status": "success", "set_id": hset, "components": ["config", "volumes"],
                                            "verified": True, "reason": None}}
    assert record["platform"]["set_id"] == pset and record["platform"]["written_by"] == ITEST_HOST
    assert record["platform"]["verified"] is True


def test_round_trip_restores_rows_and_files_exactly(lab, prefix, playbook, engines, backed_up):
    data = _host_dirs(ITEST_HOST)["data"]
    mine = os.path.join(data, TEST_DIR)
    wait_platform_ready(lab)
    # damage the database: change, delete and add rows in every table
    with _pg(lab) as conn:
        cur = conn.cursor()
        for table in backed_up["db"]:
            schema, name = table.split(".")
            cur.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema=%s AND table_name=%s "
                        "ORDER BY ordinal_position", (schema, name))
            cols = cur.fetchall()
            text_cols = [c for c, t in cols if t in ("text", "character varying")]
            if text_cols:
                cur.execute('UPDATE "%s"."%s" SET "%s" = "%s" || \'-tampered\' WHERE ctid IN (SELECT ctid FROM "%s"."%s" LIMIT 5)'
                            % (schema, name, text_cols[0], text_cols[0], schema, name))
            cur.execute('DELETE FROM "%s"."%s" WHERE ctid IN (SELECT ctid FROM "%s"."%s" LIMIT 3)' % (schema, name, schema, name))
    # damage the files: content, mode, owner, a deletion, a new file, a replaced symlink
    with open(os.path.join(mine, "plain.txt"), "ab") as fh:
        fh.write(b"tampered\n")
    os.chmod(os.path.join(mine, "secret.key"), 0o666)
    os.chown(os.path.join(mine, "sub", "script.sh"), 0, 0)
    os.unlink(os.path.join(mine, "sub", "to-delete.txt"))
    shutil.rmtree(os.path.join(mine, "sub", "deeper"))
    with open(os.path.join(mine, "new-after-backup.txt"), "wb") as fh:
        fh.write(b"must disappear\n")
    os.unlink(os.path.join(mine, "link-to-plain"))
    os.symlink("secret.key", os.path.join(mine, "link-to-plain"))
    assert db_snapshot(lab) != backed_up["db"]
    assert tree_state(data, xattrs=False, links=False) != backed_up["tree"]

    res = playbook("restore.yml", *extra(prefix))
    assert "restored %s" % ITEST_HOST in res.stdout

    after_db = db_snapshot(lab)
    for table, rows in backed_up["db"].items():
        assert after_db.get(table) == rows, "table %s differs after restore" % table
    assert set(after_db) == set(backed_up["db"])
    after_tree = tree_state(data, xattrs=False, links=False)
    assert set(after_tree) == set(backed_up["tree"]), "files differ: extra %s, missing %s" % (
        sorted(set(after_tree) - set(backed_up["tree"])), sorted(set(backed_up["tree"]) - set(after_tree)))
    for rel, fingerprint in backed_up["tree"].items():
        assert after_tree[rel] == fingerprint, "%s differs after restore (type, mode, uid, gid, bytes)" % rel

    # services: running, healthy, on the version they had, reachable through the gateway, maintenance lifted
    wait_healthy(engines, ITEST_HOST, timeout=60)
    versions = sorted(set(c.labels["io.mcp-platform.version"] for c in containers(engines, ITEST_HOST).values()))
    assert versions == backed_up["versions"]
    for service in lab["lab_services"]:
        assert _gateway_body(lab, ITEST_HOST, service)[0] == 200, service
    last = json.load(open(os.path.join(_host_dirs(ITEST_HOST)["state"], "last_restore.json")))
    assert last["status"] == "success"
    assert last["platform"]["set_id"] == backed_up["platform_sets"][0]
    assert last["host"]["set_id"] == backed_up["host_sets"][0]
    assert sorted(last["services_restarted"]) == sorted(containers(engines, ITEST_HOST))


def test_corrupted_object_is_refused_naming_the_component(lab, prefix, playbook, engines, backed_up):
    s3 = _s3(lab)
    bucket = lab["lab_s3_bucket"]
    key = "%s/hosts/%s/%s/volumes.tar.zst" % (prefix, ITEST_HOST, backed_up["host_sets"][0])
    body = bytearray(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[len(body) // 2] ^= 0xFF
    s3.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    started = {n: c.attrs["State"]["StartedAt"] for n, c in containers(engines, ITEST_HOST).items()}

    res = playbook("restore.yml", *extra(prefix, "-e", "backup_id=%s" % backed_up["platform_sets"][0]), check=False)
    assert res.returncode != 0
    out = res.stdout
    assert "refusing to restore %s" % ITEST_HOST in out, out[-3000:]
    assert "volumes: SHA-256 mismatch" in out, out[-3000:]
    assert "failed components: volumes" in out
    assert "Stop them" not in out  # nothing was stopped
    now = {n: c.attrs["State"]["StartedAt"] for n, c in containers(engines, ITEST_HOST).items()}
    assert now == started


def test_label_lookup_and_prune_dry_run(lab, prefix, playbook, backed_up):
    name = "pre-update-itest-%s" % secrets.token_hex(3)
    res = playbook("backup.yml", *extra(prefix, "-e", "backup_name=%s" % name))
    second_platform = set_ids(res.stdout, "platform")[0]
    # the label finds the run again (what rollback does). mcp_backup_info only reads the bucket, so it runs on the
    # controller (localhost, the controller's own Python, the installed collection), the way rollback's lookup could.
    found = adhoc_one("mcp.platform.mcp_backup_info", {
        "s3_endpoint_url": lab["s3_endpoint"], "s3_bucket": lab["lab_s3_bucket"],
        "s3_prefix": "%s/platform" % prefix, "s3_access_key": lab["lab_s3_access_key"],
        "s3_secret_key": lab["lab_s3_secret_key"], "label": name}, host="localhost")
    assert not found.get("failed"), found
    assert [s["id"] for s in found["sets"]] == [second_platform]
    assert found["sets"][0]["label"] == name

    # dry run: the first run is older than the (tiny) manual window; the second is the newest full: kept
    s3 = _s3(lab)
    before = sorted(_keys(s3, lab["lab_s3_bucket"], prefix))
    time.sleep(1)  # the window below is under a second: the second run must be older than it too, not just the first
    res = playbook("backup.yml", *extra(prefix, "-e", "backup_mode=prune", "-e", "backup_prune_dry_run=true",
                                        "-e", json.dumps({"backup_retention_days": {"manual": 0.00001}})))
    out = res.stdout
    assert "dry_run: true" in out
    platform_delete = re.search(r"platform_delete:\n((?:\s+- \S+\n)+)", out)
    assert platform_delete, out[-3000:]
    assert backed_up["platform_sets"][0] in platform_delete.group(1)
    assert second_platform not in platform_delete.group(1)
    host_delete = re.search(r"host_delete:\n((?:\s+- \S+\n)+)", out)
    assert host_delete and backed_up["host_sets"][0] in host_delete.group(1), out[-3000:]
    assert "older than manual window" in out
    # nothing was deleted
    assert sorted(_keys(s3, lab["lab_s3_bucket"], prefix)) == before


# ------------------------------------------------------------------ a platform-wide step failing on one of two hosts
# The platform-wide set is written and restored on the first host of the batch. When that step fails, every other
# host must fail the same way and go through its own rescue (Ansible's run_once would run that rescue on one host
# only, ansible/ansible#87308): record the failure, and not lift maintenance over stopped services.

def _other_host():
    return "mcp-3" if ITEST_HOST != "mcp-3" else "mcp-1"


def test_failed_platform_backup_fails_and_records_on_every_host(lab, prefix, playbook, backed_up):
    other = _other_host()
    hosts = [h for h in MCP_HOSTS if h in (ITEST_HOST, other)]  # inventory order: hosts[0] writes it
    wait_platform_ready(lab)
    with _state_files_kept(other):
        # the database's own node, on a port nothing listens on: pg_dump on hosts[0] cannot connect
        bad_url = "postgresql://postgres@%s:1/%s" % (lab["hosts"]["pg-1"], lab["lab_db_name"])
        res = playbook("backup.yml", *extra(prefix, "-e", "backup_database_url=%s" % bad_url, limit=",".join(hosts)), check=False)
        out = res.stdout
        assert res.returncode != 0, out[-3000:]
        assert "the platform-wide backup (postgres) on %s failed" % hosts[0] in out, out[-4000:]
        assert "PLAY RECAP" in out
        for host in hosts:
            assert re.search(r"%s\s+: ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=1\s+skipped=\d+\s+rescued=1" % host, out), out[-1500:]
            last = json.load(open(os.path.join(_host_dirs(host)["state"], "last_backup.json")))
            assert last["status"] == "failed", (host, last)
        # every host failed, so no later play runs: the run record is still written (by the first play's always)
        record = _run_record(prefix)
        assert record["status"] == "failed" and record["failed_hosts"] == hosts and record["platform"] == {}, record
        assert "connect" in record["hosts"][hosts[0]]["reason"] or "pg_dump" in record["hosts"][hosts[0]]["reason"], record
        assert "the platform-wide backup (postgres) on %s failed" % hosts[0] in record["hosts"][hosts[1]]["reason"], record
        # no host set of this failed run was written (the other host stopped before its own backup)
        s3 = _s3(lab)
        assert not _keys(s3, lab["lab_s3_bucket"], "%s/hosts/%s" % (prefix, other))


def test_failed_platform_restore_leaves_every_host_stopped_under_maintenance(lab, prefix, playbook, engines, backed_up):
    other = _other_host()
    hosts = [h for h in MCP_HOSTS if h in (ITEST_HOST, other)]
    wait_platform_ready(lab)
    rows = db_snapshot(lab)
    with _state_files_kept(other):
        try:
            res = playbook("restore.yml", *extra(prefix, "-e", "backup_id=%s" % backed_up["platform_sets"][0],
                                                 "-e", "restore_components=postgres", "-e", "restore_pg_bin_dir=/nonexistent/pg/bin",
                                                 limit=",".join(hosts)), check=False)
            out = res.stdout
            assert res.returncode != 0, out[-3000:]
            assert 'restore of %s failed in "Restore the platform-wide components (once)"' % hosts[0] in out, out[-4000:]
            assert "the platform-wide restore (postgres) on %s failed" % hosts[0] in out, out[-4000:]
            for host in hosts:
                assert re.search(r"restore of %s failed .*services left stopped, maintenance window left on" % host, out), out[-4000:]
                state = {n: c.status for n, c in containers(engines, host).items()}
                assert state and all(s != "running" for s in state.values()), (host, state)
                for service in lab["lab_services"]:
                    code, body = _gateway_body(lab, host, service)
                    assert code == 503 and "Restoring from backup" in body, (host, service, code, body[:200])
            assert db_snapshot(lab) == rows  # pg_restore never ran
        finally:
            for host in hosts:
                for ctr in containers(engines, host).values():
                    if ctr.status != "running":
                        ctr.start()
            playbook("maintenance.yml", "-e", "maintenance_action=disable", "-e", "mcp_fleet_lock_path=%s" % FLEET_LOCK,
                     "-e", "fleet_lock_wait=%s" % LOCK_WAIT, "--limit", ",".join(hosts))
            for host in hosts:
                wait_healthy(engines, host, timeout=120)
    for host in hosts:
        for service in lab["lab_services"]:
            assert _gateway_body(lab, host, service)[0] == 200


# ------------------------------------------------------------------ one MCP host unreachable during a backup
# The issue: a backup with one MCP host unreachable -> that host's set is recorded as failed, the platform set is still
# written (by the first reachable host) and verified, and the run fails after writing the run record on the controller.

def _gateway_serving(lab, host):
    return all(_gateway_body(lab, host, service)[0] == 200 for service in lab["lab_services"])


@pytest.mark.parametrize("down", ["mcp-2", "mcp-1"])
def test_backup_with_a_host_unreachable_records_it_failed_and_still_writes_the_platform_set(lab, playbook, engines, lab_host, down):
    name = "itest-%s" % secrets.token_hex(4)
    up = [h for h in MCP_HOSTS if h != down]
    wait_platform_ready(lab)
    for host in up:
        wait_healthy(engines, host, timeout=60)
    s3 = _s3(lab)
    bucket = lab["lab_s3_bucket"]
    try:
        with _state_files_kept(*MCP_HOSTS) as saved:
            lab_host.kill(down)
            t0 = time.time()
            res = playbook("backup.yml", *extra(name, limit=None), check=False)
            seconds = time.time() - t0
            out = res.stdout
            assert res.returncode != 0, out[-3000:]
            # the run record on the controller: the down host failed as unreachable, the others backed up and verified
            record = _run_record(name)
            assert record["status"] == "failed" and record["failed_hosts"] == [down], record
            assert sorted(record["hosts"]) == sorted(MCP_HOSTS)
            assert record["hosts"][down]["status"] == "failed" and record["hosts"][down]["set_id"] is None
            assert record["hosts"][down]["reason"].startswith("unreachable"), record["hosts"][down]
            for host in up:
                entry = record["hosts"][host]
                assert entry["status"] == "success" and entry["verified"] is True and entry["reason"] is None, (host, entry)
                assert sorted(entry["components"]) == ["config", "volumes"]
                hkeys = _keys(s3, bucket, "%s/hosts/%s/%s" % (name, host, entry["set_id"]))
                assert {"%s/hosts/%s/%s/%s" % (name, host, entry["set_id"], k) for k in ("manifest.json", "verification.json")} <= set(hkeys)
                last = json.load(open(os.path.join(_host_dirs(host)["state"], "last_backup.json")))
                assert last["status"] == "success" and last["host"]["set_id"] == entry["set_id"], (host, last)
            # the down host wrote nothing: its last_backup.json is as it was, no set of its own in the bucket
            path = os.path.join(_host_dirs(down)["state"], "last_backup.json")
            assert (open(path, "rb").read() if os.path.exists(path) else None) == saved[path]
            assert not _keys(s3, bucket, "%s/hosts/%s" % (name, down))
            # a timestamped copy beside it, the same record
            copies = [f for f in os.listdir(_report_dir(name)) if re.match(r"backup-run-\d{8}T\d{6}Z\.json$", f)]
            assert len(copies) == 1 and json.load(open(os.path.join(_report_dir(name), copies[0]))) == record
            assert "failed on %s" % down in out and "unreachable" in out

            # the platform set: written by the first reachable host, with its manifest, verified; checked in the bucket
            platform = record["platform"]
            assert platform["written_by"] == up[0] and platform["verified"] is True and platform["components"] == ["postgres"]
            base = "%s/platform/%s" % (name, platform["set_id"])
            pkeys = set(_keys(s3, bucket, base))
            assert {base + "/manifest.json", base + "/postgres.pgdump.zst", base + "/verification.json"} <= pkeys, pkeys
            manifest = json.loads(s3.get_object(Bucket=bucket, Key=base + "/manifest.json")["Body"].read())
            assert manifest["set_id"] == platform["set_id"] and manifest["label"] == record["name"]
            assert manifest["host"].split(".")[0] == up[0]
            assert manifest["row_counts"] and all(n >= 0 for n in manifest["row_counts"].values())
            comp = manifest["components"]["postgres"]
            # the manifest's keys are relative to the platform prefix; re-hash the stored dump here, not through the module
            dump = s3.get_object(Bucket=bucket, Key="%s/platform/%s" % (name, comp["key"]))["Body"].read()
            assert len(dump) == comp["compressed_size"] and hashlib.sha256(dump).hexdigest() == comp["sha256"]
            verification = json.loads(s3.get_object(Bucket=bucket, Key=base + "/verification.json")["Body"].read())
            assert verification["ok"] is True and verification["failed_components"] == []
            print("backup with %s down: %.1fs" % (down, seconds))
    finally:
        # power the host back on: its init starts the engine, the replicas (restart policy) and the gateway by itself;
        # wait until its gateway serves every service again so later tests find a healthy lab
        lab_host.boot(down)
        engines._clients.pop(down, None)  # the client's pooled connections went with the old engine
        wait_until(lambda: _gateway_serving(lab, down), timeout=180, interval=1, what="%s's gateway serving every service" % down)
        wait_healthy(engines, down, timeout=120)
        _remove_prefix(lab, name)


def test_backup_with_no_host_reachable_still_records_the_run_and_frees_the_lock(lab, playbook, lab_host):
    """Every MCP host cut off from the controller: each ends at the reachability step, before the backup play's always
    section, so the play on the controller writes the record and releases the fleet lock (held for 4 h otherwise)."""
    name = "itest-%s" % secrets.token_hex(4)
    wait_platform_ready(lab)
    try:
        with _state_files_kept(*MCP_HOSTS) as saved:
            for host in MCP_HOSTS:
                lab_host.cut("controller", host)
            res = playbook("backup.yml", *extra(name, limit=None), check=False)
            out = res.stdout
            assert res.returncode != 0, out[-3000:]
            record = _run_record(name)
            assert record["status"] == "failed" and record["failed_hosts"] == list(MCP_HOSTS) and record["platform"] == {}, record
            for host in MCP_HOSTS:
                assert record["hosts"][host]["reason"].startswith("unreachable"), (host, record["hosts"][host])
            assert "Write the run record (no host got to the end of the backup play)" in out
            lock = json.load(open(FLEET_LOCK)) if os.path.exists(FLEET_LOCK) else {}
            assert not str(lock.get("owner", "")).startswith("backup/"), lock
            assert not _keys(_s3(lab), lab["lab_s3_bucket"], name)
            for path, body in saved.items():  # no host wrote anything
                assert (open(path, "rb").read() if os.path.exists(path) else None) == body, path
    finally:
        lab_host.heal()
        _remove_prefix(lab, name)
