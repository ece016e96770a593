"""Every playbook in check mode (AWX's "Check" job type) against the lab: it runs without error, changes nothing, and
prints no secret even at -vvv.

"Nothing" is measured on the real parts: each MCP host's containers (from its own engine) and its /etc/mcp and
/var/lib/mcp files, each PostgreSQL node's role, timeline and replication settings, every row of the platform
database, every object in the backup bucket (key, size, ETag), and the controller's reports folder and fleet lock.
The same -vvv output is scanned for the lab's passwords, S3 secret key and SSH private key.
"""
import json
import os

import boto3
import psycopg2
import pytest
from conftest import LAB_DIR, MCP_HOSTS, PG_NODES, host_path, pg_dsn, pg_roles

CONFIRM = ["-e", "update_confirm_staging_tested=true", "-e", "update_confirm_maintenance_window=true",
           "-e", "update_confirm_users_notified=true"]


def _runs(current, other):
    """(id, playbook, extra vars): one run per playbook and per state-changing action of it."""
    return [
        ("daily_check", "daily_check", []),
        ("backup", "backup", []),
        ("restore", "restore", []),
        ("maintenance-enable", "maintenance", ["-e", "maintenance_action=enable", "-e", "services=filesystem,postgres",
                                               "-e", "message=check-mode window", "-e", "ttl=600"]),
        ("maintenance-disable", "maintenance", ["-e", "maintenance_action=disable"]),
        ("failover-switchover", "failover", ["-e", "failover_action=switchover"]),
        ("failover-rejoin", "failover", ["-e", "failover_action=rejoin"]),
        ("service-stop", "service", ["-e", "service_action=stop", "-e", "services=git"]),
        ("service-restart", "service", ["-e", "service_action=restart"]),
        ("restart", "restart", ["-e", "services=filesystem"]),
        ("deploy", "deploy", []),
        ("update", "update", ["-e", "version=" + other, "-e", "services=git"] + CONFIRM),
        ("rollback", "rollback", ["-e", "version=" + other]),
        ("node", "node", []),
        ("lab_status", "lab_status", []),
    ]


def _tree(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames) + [""]:
            path = os.path.join(dirpath, name) if name else dirpath
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            out[os.path.relpath(path, root)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def _db_rows(lab, node):
    conn = psycopg2.connect(pg_dsn(node, dbname=lab["lab_db_name"]))
    try:
        cur = conn.cursor()
        cur.execute("SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
                    "ORDER BY 1, 2")
        rows = {}
        for schema, table in cur.fetchall():
            cur.execute('SELECT md5(coalesce(string_agg(t::text, chr(10) ORDER BY t::text), \'\')) FROM "%s"."%s" t'
                        % (schema, table))
            rows["%s.%s" % (schema, table)] = cur.fetchone()[0]
        return rows
    finally:
        conn.close()


def _pg_node(node):
    conn = psycopg2.connect(pg_dsn(node))
    try:
        cur = conn.cursor()
        cur.execute("SELECT pg_is_in_recovery(), (SELECT timeline_id FROM pg_control_checkpoint()), "
                    "current_setting('primary_conninfo'), current_setting('default_transaction_read_only')")
        return cur.fetchone()
    finally:
        conn.close()


def _bucket(lab):
    s3 = boto3.client("s3", endpoint_url=lab["s3_endpoint"], region_name="us-east-1",
                      aws_access_key_id=lab["lab_s3_access_key"], aws_secret_access_key=lab["lab_s3_secret_key"])
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=lab["lab_s3_bucket"]):
        for o in page.get("Contents", []) or []:
            out[o["Key"]] = (o["Size"], o["ETag"])
    return out


def snapshot(lab, engines):
    roles = pg_roles()
    primary = [n for n, r in roles.items() if r == "primary"]
    assert len(primary) == 1, "the lab needs one PostgreSQL primary: %s" % roles
    snap = {"pg_roles": roles, "db": _db_rows(lab, primary[0]), "bucket": _bucket(lab),
            "pg": dict((n, _pg_node(n)) for n in PG_NODES),
            "reports": _tree(os.path.join(LAB_DIR, "reports")),
            "fleet_lock": os.path.exists(os.path.join(LAB_DIR, "fleet.lock"))}
    for host in MCP_HOSTS:
        snap[host] = {
            "containers": dict((n, (c.id, c.status, c.image.id, c.labels.get("io.mcp-platform.version")))
                               for n, c in engines.containers(host).items()),
            "etc": _tree(host_path(host, "/etc/mcp")),
            "state": _tree(host_path(host, "/var/lib/mcp")),
        }
    return snap


def _diff(before, after, path=""):
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for k in sorted(set(before) | set(after), key=str):
            if k not in after:
                out.append("%s/%s: gone" % (path, k))
            elif k not in before:
                out.append("%s/%s: new" % (path, k))
            else:
                out.extend(_diff(before[k], after[k], "%s/%s" % (path, k)))
        return out
    return [] if before == after else ["%s: %r -> %r" % (path, before, after)]


def _secrets(lab):
    with open(os.path.join(LAB_DIR, "ssh", "id_ed25519")) as fh:
        key_lines = [ln.strip() for ln in fh if ln.strip() and not ln.startswith("-----")]
    return [lab["lab_db_password"], lab["lab_pg_admin_password"], lab["lab_s3_secret_key"]] + key_lines


@pytest.fixture(scope="module")
def versions(lab):
    with open(host_path(MCP_HOSTS[0], "/etc/mcp/platform.env")) as fh:
        current = dict(ln.strip().split("=", 1) for ln in fh if "=" in ln and not ln.startswith("#"))["VERSION"]
    ladder = lab["lab_versions"]
    i = ladder.index(current)
    other = ladder[i + 1] if i + 1 < len(ladder) else ladder[i - 1]  # an update goes forward where it can
    return current, other


@pytest.fixture(scope="module")
def baseline(lab, engines, playbook):
    """A good backup set to plan a restore from (made for real, before the baseline), then the baseline."""
    if not any(k.startswith("lab/platform/") and k.endswith("/manifest.json") for k in _bucket(lab)):
        playbook("backup")
    return snapshot(lab, engines)


@pytest.mark.parametrize("index", range(len(_runs("x", "y"))), ids=[r[0] for r in _runs("x", "y")])
def test_playbook_in_check_mode_changes_nothing_and_prints_no_secret(lab, engines, playbook, versions, baseline, index):
    name, target, extra = _runs(*versions)[index]
    res = playbook(target, "--check", "-vvv", *extra, check=False, env={"ANSIBLE_NOCOLOR": "1"})
    assert res.returncode == 0, "%s --check failed (rc %d):\n%s" % (name, res.returncode, res.stdout[-5000:])
    leaked = [s[:6] + "..." for s in _secrets(lab) if s in res.stdout]
    assert not leaked, "%s --check -vvv printed secrets (%s)" % (name, ", ".join(leaked))
    changes = _diff(baseline, snapshot(lab, engines))
    assert not changes, "%s --check changed the lab:\n%s" % (name, "\n".join(changes[:40]))


def test_services_as_a_string_is_a_list_of_names(lab, playbook, versions):
    """-e services=git is one service, not the letters g, i, t; a comma-separated string is several."""
    res = playbook("update", "--check", "-e", "version=" + versions[1], "-e", "services=git", *CONFIRM, check=False)
    assert res.returncode == 0 and "service(s) t, i, g" not in res.stdout, res.stdout[-3000:]
    res = playbook("update", "--check", "-e", "version=" + versions[1], "-e", "services=git,nosuch", *CONFIRM, check=False)
    assert res.returncode != 0 and "service(s) nosuch: check 'known service' failed" in res.stdout, res.stdout[-3000:]
    res = playbook("service", "--check", "-e", json.dumps({"service_action": "stop", "services": "git\nfilesystem\n"}),
                   check=False)
    assert res.returncode == 0, res.stdout[-3000:]
    assert "Stop (mcp stop --graceful)" in res.stdout


def test_old_entry_names_work_with_a_deprecation_warning(lab, playbook):
    res = playbook("service", "--check", "-e", "action=stop", "-e", "services=git", "-e", "timeout=20", "--limit",
                   MCP_HOSTS[0], check=False, env={"ANSIBLE_NOCOLOR": "1"})
    assert res.returncode == 0, res.stdout[-3000:]
    out = " ".join(res.stdout.split())
    assert "'action' (a name ansible-core reserves) is now 'service_action'" in out, res.stdout[:3000]
    assert "'timeout' (a name ansible-core reserves) is now 'service_stop_timeout'" in out
    assert "version 0.3.0" in out
    res = playbook("service", "--check", "-e", "service_action=stop", "-e", "services=git", "--limit", MCP_HOSTS[0],
                   check=False, env={"ANSIBLE_NOCOLOR": "1"})
    assert res.returncode == 0 and "reserved name" not in res.stdout and "DEPRECATION" not in res.stdout, res.stdout[:3000]


def test_no_prompt_under_ansible_runner_environment(lab, playbook, versions):
    """Under AWX or ansible-runner (which sets AWX_ISOLATED_DATA_DIR) an unset confirmation fails at once, naming the
    variable, instead of waiting at a prompt nobody answers."""
    res = playbook("update", "--check", "-e", "version=" + versions[1], check=False, timeout=300,
                   env={"AWX_ISOLATED_DATA_DIR": "/tmp/runner-artifacts"})
    assert res.returncode != 0, res.stdout[-3000:]
    assert "check 'confirmation update_confirm_staging_tested' failed" in res.stdout, res.stdout[-3000:]
    assert "(y/n)" not in res.stdout
