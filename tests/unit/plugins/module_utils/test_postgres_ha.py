# -*- coding: utf-8 -*-
"""postgres_ha against real throwaway PostgreSQL 15 clusters (primary + streaming replica).

No mocks: initdb/pg_basebackup/pg_ctl as the ``postgres`` user, ports 33000-33999 on 127.0.0.1,
sockets in the cluster's temp folder. Skipped (with the reason) when not root or PG 15 is absent.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import pwd
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from ansible_collections.mcp.platform.plugins.module_utils import postgres_ha as ha

PGBIN = "/usr/lib/postgresql/15/bin"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
COLLECTIONS = os.path.join(ROOT, ".build", "collections")


def pg_available():
    if os.geteuid() != 0:
        return "needs root (clusters run as the postgres user via runuser)"
    if not os.path.exists(os.path.join(PGBIN, "initdb")):
        return "PostgreSQL 15 binaries not found in %s" % PGBIN
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres OS user"
    return None


needs_pg = pytest.mark.skipif(pg_available() is not None, reason=str(pg_available()))


def free_port():
    for _attempt in range(200):
        port = random.randint(33000, 33999)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port in 33000-33999")


def as_pg(argv, check=True):
    proc = subprocess.run(["runuser", "-u", "postgres", "--"] + argv, cwd="/", stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), proc.stdout.decode()))
    return proc


class Node:
    def __init__(self, root, name, port):
        self.root, self.name, self.port = root, name, port
        self.data = os.path.join(root, name)
        self.log = os.path.join(root, name + ".log")
        self.dsn = "host=127.0.0.1 port=%d user=postgres dbname=postgres" % port

    def start(self):
        as_pg([PGBIN + "/pg_ctl", "-D", self.data, "-o", "-p %d" % self.port, "-l", self.log, "-w", "start"])

    def stop(self, mode="fast"):
        as_pg([PGBIN + "/pg_ctl", "-D", self.data, "-m", mode, "-w", "stop"], check=False)

    def running(self):
        return as_pg([PGBIN + "/pg_ctl", "-D", self.data, "status"], check=False).returncode == 0

    def sql(self, q, args=None):
        conn = ha.connect(self.dsn, 5)
        try:
            return ha.query(conn, q, args)
        finally:
            conn.close()


class Cluster:
    """A primary and, optionally, a streaming replica in a fresh temp folder."""

    def __init__(self, replica=True):
        self.root = tempfile.mkdtemp(prefix="mcpha", dir="/tmp")
        os.chmod(self.root, 0o755)
        pw = pwd.getpwnam("postgres")
        os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.primary = Node(self.root, "primary", free_port())
        as_pg([PGBIN + "/initdb", "-D", self.primary.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
               "--locale=C.UTF-8"])
        with open(os.path.join(self.primary.data, "postgresql.conf"), "a") as fh:
            fh.write("listen_addresses='127.0.0.1'\nunix_socket_directories='%s'\nwal_level=replica\n"
                     "max_wal_senders=5\nwal_keep_size='256MB'\nhot_standby=on\nwal_log_hints=on\n"
                     "fsync=off\nshared_buffers='32MB'\n" % self.root)
        self.primary.start()
        self.replica = None
        if replica:
            self.replica = Node(self.root, "replica", free_port())
            as_pg([PGBIN + "/pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
                   "-D", self.replica.data, "-R", "-X", "stream", "-c", "fast"])
            self.replica.start()
            wait_for(lambda: self.replica.sql("SELECT status FROM pg_stat_wal_receiver") == [("streaming",)], 15)

    def destroy(self):
        for node in (self.primary, self.replica):
            if node is not None and node.running():
                node.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def wait_for(pred, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if pred():
                return True
        except Exception:  # pylint: disable=broad-except
            pass
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %s s" % timeout)
        time.sleep(interval)


def gate(result_or_gates, name):
    gates = result_or_gates["gates"] if isinstance(result_or_gates, dict) else result_or_gates
    return [g for g in gates if g["name"] == name][0]


# ----------------------------------------------------------------------------- pure

def test_mask_hides_passwords():
    assert "s3cr" not in ha.mask("host=a password=s3cr3t user=b")
    assert "s3cr" not in ha.mask("host=a password='s3 cr3t' user=b")
    assert "s3cr" not in ha.mask("postgresql://u:s3cr3t@h:5432/db")
    assert "s3cr" not in ha.mask("postgres://h/db?user=u&password=s3cr3t")
    assert "s3cr" not in ha.mask("error for s3cr3t", ["s3cr3t"])


def test_confirmations_interpreted():
    assert ha.interpret_confirmation(True) is True
    assert ha.interpret_confirmation("false") is False
    assert ha.interpret_confirmation({"failed": True, "msg": "Timeout"}) is True
    assert ha.interpret_confirmation({"is_available": True}) is False
    assert ha.interpret_confirmation({"name": "mcp-1", "unreachable": True}) is None
    assert ha.interpret_confirmation({"skipped": True, "changed": False}) is None
    with pytest.raises(ha.HAError):
        ha.interpret_confirmation({"foo": 1})


# The primary_down vote (pure): vantage points = the controller + every confirmation.

def hosts(*verdicts):
    """mcp-1.. with down (True), up (False) or could-not-be-asked (None)."""
    out = []
    for i, v in enumerate(verdicts, 1):
        name = "mcp-%d" % i
        if v is None:
            out.append({"name": name, "unreachable": True})
        else:
            out.append({"name": name, "down": v, "detail": "10.0.0.1:5432: connection refused" if v else "10.0.0.1:5432 accepts connections"})
    return out


def quorum(controller_down, confirmations, min_confirmations=1, detail="connection refused", secrets=()):
    return ha.primary_down_quorum(controller_down, detail, confirmations, min_confirmations, secrets)


def test_quorum_controller_alone_down_of_four_refused():
    passed, detail, points = quorum(True, hosts(False, False, False))
    assert passed is False
    assert detail.startswith("1 of 4 vantage points report the primary down (a majority, 3, is required)")
    assert "still see it: mcp-1, mcp-2, mcp-3" in detail and "down from: controller;" in detail
    assert [(p["name"], p["status"], p["down"]) for p in points] == [
        ("controller", "down", True), ("mcp-1", "up", False), ("mcp-2", "up", False), ("mcp-3", "up", False)]
    assert points[1]["detail"] == "10.0.0.1:5432 accepts connections"


def test_quorum_partition_controller_and_one_host_refused():
    """The issue's partition: the controller and mcp-1 are cut off from the primary, mcp-2 and mcp-3 still see it."""
    passed, detail, _points = quorum(True, hosts(True, False, False))
    assert passed is False
    assert detail == ("2 of 4 vantage points report the primary down (a majority, 3, is required); still see it: mcp-2, mcp-3; "
                      "down from: controller, mcp-1; controller: connection refused")


def test_quorum_all_down_passes():
    passed, detail, points = quorum(True, hosts(True, True, True))
    assert passed is True
    assert detail.startswith("4 of 4 vantage points report the primary down (a majority, 3, is required); "
                             "down from: controller, mcp-1, mcp-2, mcp-3")
    assert "still see it" not in detail and "could not be asked" not in detail
    assert all(p["down"] for p in points)


def test_quorum_three_of_four_one_host_not_asked_passes():
    passed, detail, points = quorum(True, hosts(True, None, True))
    assert passed is True
    assert detail.startswith("3 of 4 vantage points report the primary down (a majority, 3, is required); "
                             "could not be asked: mcp-2; down from: controller, mcp-1, mcp-3")
    assert points[2] == {"name": "mcp-2", "status": "unknown", "down": False, "detail": "could not be asked (unreachable: true)"}


def test_quorum_hosts_not_asked_stay_in_the_count():
    # Two of four could not be asked: 2 of 4 is no majority (they are not dropped from the electorate).
    passed, detail, _points = quorum(True, hosts(True, None, None))
    assert passed is False
    assert "2 of 4" in detail and "could not be asked: mcp-2, mcp-3" in detail


def test_quorum_controller_must_see_it_down():
    """3 of 4 is a majority, but the controller (where the promotion runs) still reaches the primary: refused."""
    passed, detail, points = quorum(False, hosts(True, True, True), detail="accepting connections")
    assert passed is False
    assert detail.startswith("3 of 4 vantage points report the primary down (a majority, 3, is required); still see it: controller; "
                             "down from: mcp-1, mcp-2, mcp-3; the controller must see it down too")
    assert "fenced=true" in detail and detail.endswith("controller: accepting connections")
    assert points[0] == {"name": "controller", "status": "up", "down": False, "detail": "accepting connections"}
    # No verdict from the controller (e.g. its host name does not resolve): refused as well.
    passed, detail, points = quorum(None, hosts(True, True, True), detail="host name could not be resolved")
    assert passed is False and points[0]["status"] == "unknown"
    assert "could not be asked: controller" in detail


def test_quorum_small_electorates():
    assert quorum(True, hosts(True))[0] is True                      # 2 of 2
    assert quorum(True, hosts(False))[0] is False                    # 1 of 2 is no majority
    assert quorum(True, hosts(True, False))[0] is True               # 2 of 3
    assert quorum(True, hosts(None))[0] is False                     # 1 of 2
    assert quorum(True, [])[0] is False                              # min_confirmations 1: a second vantage point is needed
    passed, detail, _points = quorum(True, [])
    assert "0 vantage point(s) besides the controller report it down, min_confirmations is 1" in detail
    assert quorum(True, [], min_confirmations=0)[0] is True         # the controller alone, when asked for
    assert quorum(False, [], min_confirmations=0)[0] is False


def test_quorum_min_confirmations_on_top_of_the_majority():
    passed, detail, _points = quorum(True, hosts(True, None), min_confirmations=2)   # 2 of 3 is a majority, 1 besides
    assert passed is False and "1 vantage point(s) besides the controller report it down, min_confirmations is 2" in detail
    assert quorum(True, hosts(True, True, None), min_confirmations=2)[0] is True
    with pytest.raises(ha.HAError, match="min_confirmations must not be negative"):
        quorum(True, hosts(True), min_confirmations=-1)


def test_quorum_bools_strings_and_registered_results():
    items = [True, "false", "down", {"failed": True, "msg": "Timeout when waiting for 10.0.0.1:5432"},
             {"reachable": "no"}, {"is_available": True}, {"unreachable": True, "msg": "Failed to connect to the host via ssh"},
             {"skipped": True, "changed": False}]
    passed, _detail, points = quorum(True, items)
    assert [p["name"] for p in points] == ["controller"] + ["vantage-%d" % i for i in range(1, 9)]
    assert [p["status"] for p in points] == ["down", "down", "up", "down", "down", "down", "up", "unknown", "unknown"]
    assert points[4]["detail"] == "Timeout when waiting for 10.0.0.1:5432"
    assert points[7]["detail"] == "Failed to connect to the host via ssh"
    assert passed is True   # 5 of 9


def test_quorum_bad_items_named():
    with pytest.raises(ha.HAError) as err:
        quorum(True, [{"name": "mcp-1", "down": True}, {"name": "mcp-2", "down": "maybe"}])
    assert "item 2 (mcp-2" in str(err.value) and "'down' must be a boolean" in str(err.value)
    with pytest.raises(ha.HAError) as err:
        quorum(True, [True, {"name": "mcp-2", "stdout": "x"}])
    assert "item 2 (mcp-2" in str(err.value) and "'stdout'" in str(err.value) and "'unreachable: true'" in str(err.value)
    with pytest.raises(ha.HAError, match=r"item 1 \(vantage-1, 42\)"):
        quorum(True, [42])
    with pytest.raises(ha.HAError, match=r"item 1 \(vantage-1, 'perhaps'\)"):
        quorum(True, ["perhaps"])
    with pytest.raises(ha.HAError, match="item 2: 'name' must be a non-empty string"):
        quorum(True, [True, {"name": "", "down": True}])
    with pytest.raises(ha.HAError, match=r"item 2: vantage point 'mcp-1' appears twice \(also item 1\)"):
        quorum(True, [{"name": "mcp-1", "down": True}, {"name": "mcp-1", "down": True}])
    with pytest.raises(ha.HAError, match="'controller' appears twice"):
        quorum(True, [{"name": "controller", "down": True}])
    with pytest.raises(ha.HAError, match="must be a list"):
        quorum(True, "true")


def test_quorum_secrets_masked():
    passed, detail, points = quorum(True, [{"name": "mcp-1", "down": True, "detail": "postgresql://u:Hunter2@h/db refused"}],
                                    detail="password=Hunter2 refused", secrets=["Hunter2"])
    assert passed is True
    assert "Hunter2" not in detail and all("Hunter2" not in p["detail"] for p in points)


def test_primary_down_gate_from_probe_and_fenced():
    refused = dict(reachable=False, answered=False, in_recovery=None, detail="Connection refused")
    gate, points = ha.primary_down_gate(refused, hosts(True, False, False))
    assert gate["name"] == "primary_down" and gate["passed"] is False and points[0]["status"] == "down"
    # A refused login proves the server is alive: the controller still sees it.
    login = dict(reachable=False, answered=True, in_recovery=None, detail="password authentication failed")
    gate, points = ha.primary_down_gate(login, hosts(True, True, True))
    assert gate["passed"] is False and points[0]["status"] == "up"
    nodsn = dict(reachable=None, answered=None, in_recovery=None, detail="no primary_dsn given")
    assert ha.primary_down_gate(nodsn, hosts(True))[1][0]["status"] == "unknown"
    # fenced=true passes, the vote still reported; bad items still refused.
    gate, points = ha.primary_down_gate(login, hosts(False, False), fenced=True)
    assert gate["passed"] is True and gate["detail"].startswith("old primary declared fenced (fenced=true)")
    assert "still see it: controller, mcp-1, mcp-2" in gate["detail"] and len(points) == 3
    with pytest.raises(ha.HAError, match="item 1"):
        ha.primary_down_gate(refused, [{"x": 1}], fenced=True)


def test_negative_lag_limits_refused():
    with pytest.raises(ha.HAError, match="max_lag_bytes"):
        ha.validate_limits(-1, 30)
    with pytest.raises(ha.HAError, match="max_lag_seconds"):
        ha.validate_limits(10, -0.5)


def test_unreachable_candidate_clear_message_no_password():
    port = free_port()
    with pytest.raises(ha.HAError) as err:
        ha.evaluate_gates("host=127.0.0.1 port=%d user=x password=TopSecret1" % free_port(),
                          "host=127.0.0.1 port=%d user=x password=TopSecret2" % port, confirmations=[True])
    text = str(err.value)
    assert "cannot connect to candidate_dsn" in text and str(port) in text
    assert "TopSecret" not in text


def test_invalid_dsn_masked():
    with pytest.raises(ha.HAError) as err:
        ha.parse_dsn("host=x password=TopSecret3 bogus")
    assert "TopSecret3" not in str(err.value)


# ----------------------------------------------------------------------------- real clusters

@needs_pg
class TestFailoverFlow:
    """Ordered: refuse (primary up) → check mode → promote → rerun → diverge → rejoin → rerun."""

    cluster = None
    timings = {}

    @classmethod
    def setup_class(cls):
        cls.cluster = Cluster()
        cls.cluster.primary.sql("CREATE TABLE t (id int primary key, v text)")
        cls.cluster.primary.sql("INSERT INTO t SELECT g, 'before' FROM generate_series(1, 100) g")

    @classmethod
    def teardown_class(cls):
        if cls.cluster:
            cls.cluster.destroy()
        sys.stderr.write("\nfailover timings: %s\n" % json.dumps(cls.timings))

    def test_1_primary_running_refused(self):
        c = self.cluster
        res = ha.promote(c.primary.dsn, c.replica.dsn, confirmations=[True])
        assert res["failed"] and not res["changed"]
        assert gate(res, "primary_down")["passed"] is False
        assert "primary_down" in res["msg"]
        assert gate(res, "candidate_in_recovery")["passed"] is True
        assert c.replica.sql("SELECT pg_is_in_recovery()") == [(True,)]

    def test_2_needs_second_vantage_point(self):
        c = self.cluster
        c.primary.stop()
        res = ha.promote(c.primary.dsn, c.replica.dsn, confirmations=[])
        assert res["failed"] and "primary_down" in res["msg"]
        res = ha.promote(c.primary.dsn, c.replica.dsn,
                         confirmations=[{"name": "mcp-1", "down": True}, {"name": "mcp-2", "failed": False},
                                        {"name": "mcp-3", "unreachable": True}])
        assert res["failed"], "2 of 4 vantage points is no majority"
        assert "still see it: mcp-2; could not be asked: mcp-3; down from: controller, mcp-1" in res["msg"]
        assert [p["name"] for p in res["vantage_points"]] == ["controller", "mcp-1", "mcp-2", "mcp-3"]
        assert c.replica.sql("SELECT pg_is_in_recovery()") == [(True,)]

    def test_3_check_mode_predicts(self):
        c = self.cluster
        res = ha.promote(c.primary.dsn, c.replica.dsn, confirmations=[True], check_mode=True)
        assert res["changed"] and not res["failed"] and "would promote" in res["msg"]
        assert all(g["passed"] for g in res["gates"])
        assert c.replica.sql("SELECT pg_is_in_recovery()") == [(True,)]

    def test_4_promoted_accepts_writes(self):
        c = self.cluster
        res = ha.promote(c.primary.dsn, c.replica.dsn, confirmations=[True])
        assert res["changed"] and not res["failed"], res["msg"]
        assert res["timeline"] == 2
        assert res["rpo_bytes"] == 0 and res["rpo_seconds"] is not None
        self.timings["promote_duration_s"] = res["promote_duration"]
        self.timings["promote_total_s"] = res["duration"]
        c.replica.sql("INSERT INTO t VALUES (1001, 'after-promote')")
        assert c.replica.sql("SELECT count(*) FROM t") == [(101,)]

    def test_5_rerun_unchanged(self):
        c = self.cluster
        res = ha.promote(c.primary.dsn, c.replica.dsn, confirmations=[True])
        assert not res["changed"] and not res["failed"] and res["already_promoted"]

    def test_6_rejoin_after_divergence(self):
        c = self.cluster
        # The old primary comes back on its own and takes writes that the new primary never saw.
        c.primary.start()
        c.primary.sql("CREATE TABLE diverged AS SELECT g FROM generate_series(1, 1000) g")
        c.primary.sql("INSERT INTO t VALUES (2001, 'split-brain')")
        # Two primaries now: a promotion rerun must refuse (split brain), not say "unchanged".
        res = ha.promote(c.primary.dsn, c.replica.dsn, confirmations=[True])
        assert res["failed"] and "split brain" in res["msg"]
        plan = ha.rejoin(c.primary.dsn, c.replica.dsn, c.primary.data, c.primary.port, bin_dir=PGBIN,
                         os_user="postgres", log_file=c.primary.log, check_mode=True)
        assert plan["changed"] and plan["method"] == "rewind" and plan["steps"][0] == "stop"
        assert c.primary.running()
        t0 = time.monotonic()
        res = ha.rejoin(c.primary.dsn, c.replica.dsn, c.primary.data, c.primary.port, bin_dir=PGBIN,
                        os_user="postgres", log_file=c.primary.log, wait_seconds=60)
        self.timings["rejoin_s"] = round(time.monotonic() - t0, 3)
        assert res["changed"] and res["method"] == "rewind", res
        assert res["prerequisites"]["wal_log_hints"] is True
        assert res["prerequisites"]["node_timeline"] == 1 and res["prerequisites"]["source_timeline"] == 2
        old = c.primary
        assert old.sql("SELECT pg_is_in_recovery()") == [(True,)]
        assert old.sql("SELECT status FROM pg_stat_wal_receiver") == [("streaming",)]
        assert old.sql("SELECT to_regclass('diverged')") == [(None,)]
        assert old.sql("SELECT count(*) FROM t WHERE id = 2001") == [(0,)]
        c.replica.sql("INSERT INTO t VALUES (3001, 'after-rejoin')")
        wait_for(lambda: old.sql("SELECT count(*) FROM t WHERE id = 3001") == [(1,)], 10)
        assert c.replica.sql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == [(1,)]

    def test_7_rejoin_rerun_unchanged(self):
        c = self.cluster
        res = ha.rejoin(c.primary.dsn, c.replica.dsn, c.primary.data, c.primary.port, bin_dir=PGBIN,
                        os_user="postgres", log_file=c.primary.log)
        assert not res["changed"] and "already streams" in res["msg"]
        # And promotion reruns stay unchanged now that the old primary is a replica.
        res = ha.promote(c.primary.dsn, c.replica.dsn, confirmations=[True])
        assert not res["changed"] and not res["failed"]


@needs_pg
def test_lag_gate_refuses_then_force():
    c = Cluster()
    try:
        c.replica.sql("SELECT pg_wal_replay_pause()")
        wait_for(lambda: c.replica.sql("SELECT pg_get_wal_replay_pause_state()") == [("paused",)], 10)
        c.primary.sql("CREATE TABLE big AS SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 120000) g")
        target = c.primary.sql("SELECT pg_current_wal_lsn()::text")[0][0]
        wait_for(lambda: c.replica.sql("SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn", (target,)) == [(True,)], 20)
        c.primary.stop()
        res = ha.promote(c.primary.dsn, c.replica.dsn, confirmations=[True])
        assert res["failed"] and not res["changed"]
        assert gate(res, "lag")["passed"] is False and gate(res, "primary_down")["passed"] is True
        assert "lag" in res["msg"] and "force" in res["msg"]
        assert c.replica.sql("SELECT pg_is_in_recovery()") == [(True,)]
        res = ha.promote(c.primary.dsn, c.replica.dsn, confirmations=[True], force=True)
        assert res["changed"] and res["forced"] and not res["failed"], res["msg"]
        assert res["rpo_bytes"] > 16 * 1024 * 1024
        assert res["replayed_before_promote"] is True
        # Replay was resumed and caught up before promotion: the received rows are there.
        assert c.replica.sql("SELECT count(*) FROM big") == [(120000,)]
        res = ha.promote(c.primary.dsn, c.replica.dsn, confirmations=[True], force=True)
        assert not res["changed"] and res["already_promoted"]
    finally:
        c.destroy()


@needs_pg
def test_rejoin_resumes_a_rejoin_interrupted_after_its_rewind():
    """The rewind ran (standby.signal written, cluster 'in archive recovery') but the node never started: a rerun
    starts it instead of rewinding again (which fails: the target was not shut down cleanly)."""
    c = Cluster()
    try:
        c.primary.stop()
        assert ha.promote(c.primary.dsn, c.replica.dsn, fenced=True)["changed"]
        c.replica.sql("CHECKPOINT")
        as_pg([PGBIN + "/pg_rewind", "--target-pgdata=" + c.primary.data, "--source-server=" + c.replica.dsn, "-R"])
        assert os.path.exists(os.path.join(c.primary.data, "standby.signal")) and not c.primary.running()
        plan = ha.rejoin(c.primary.dsn, c.replica.dsn, c.primary.data, c.primary.port, bin_dir=PGBIN,
                         os_user="postgres", log_file=c.primary.log, check_mode=True)
        assert plan["steps"][0] == "resume", plan
        res = ha.rejoin(c.primary.dsn, c.replica.dsn, c.primary.data, c.primary.port, bin_dir=PGBIN,
                        os_user="postgres", log_file=c.primary.log, wait_seconds=60)
        assert res["changed"] and res["method"] == "resume" and "rewind" not in res["steps"], res
        assert c.primary.sql("SELECT status FROM pg_stat_wal_receiver") == [("streaming",)]
    finally:
        c.destroy()


@needs_pg
def test_reclone_when_rewind_impossible():
    """Old primary without wal_log_hints/checksums: refused unless allow_reclone, then cloned afresh."""
    c = Cluster()
    try:
        # Turn wal_log_hints off on the old primary only (restart), then fail over.
        with open(os.path.join(c.primary.data, "postgresql.conf"), "a") as fh:
            fh.write("wal_log_hints=off\n")
        c.primary.stop()
        c.primary.start()
        c.primary.stop()
        assert ha.promote(c.primary.dsn, c.replica.dsn, fenced=True)["changed"]
        with pytest.raises(ha.HAError, match="allow_reclone"):
            ha.rejoin(c.primary.dsn, c.replica.dsn, c.primary.data, c.primary.port, bin_dir=PGBIN, os_user="postgres",
                      log_file=c.primary.log)
        res = ha.rejoin(c.primary.dsn, c.replica.dsn, c.primary.data, c.primary.port, bin_dir=PGBIN,
                        os_user="postgres", log_file=c.primary.log, allow_reclone=True)
        assert res["changed"] and res["method"] == "reclone" and os.path.isdir(res["moved_aside"])
        assert c.primary.sql("SELECT status FROM pg_stat_wal_receiver") == [("streaming",)]
    finally:
        c.destroy()


# ----------------------------------------------------------------------------- through ansible

def run_module(module, args, verbosity="-vvv"):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_PYTHON_INTERPRETER=os.path.join(VENV_BIN, "python"))
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible"), "localhost", verbosity, "-m", module, "-a", args],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT, check=False, timeout=120)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


@pytest.mark.skipif(not os.path.exists(os.path.join(VENV_BIN, "ansible")), reason="no .venv/bin/ansible")
def test_module_bad_input_messages_without_password():
    port = free_port()
    rc, out = run_module("mcp.platform.mcp_failover",
                         "state=promoted primary_dsn='host=127.0.0.1 port=%d user=x password=Hunter2Secret' "
                         "candidate_dsn='host=127.0.0.1 port=%d user=x password=Hunter2Secret' "
                         "primary_down_confirmations=true" % (free_port(), port))
    assert rc != 0
    assert "cannot connect to candidate_dsn" in out and "127.0.0.1:%d" % port in out
    assert "Hunter2Secret" not in out
    rc, out = run_module("mcp.platform.mcp_failover",
                         "state=promoted max_lag_bytes=-5 primary_dsn='host=h password=Hunter2Secret' "
                         "candidate_dsn='host=h password=Hunter2Secret'")
    assert rc != 0 and "max_lag_bytes must not be negative" in out
    assert "Hunter2Secret" not in out
