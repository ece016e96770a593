# -*- coding: utf-8 -*-
"""postgres_rejoin: the plan decisions (pure), then the whole failover flow and the rejoin variants against real
throwaway PostgreSQL 15 clusters (see unit_support)."""

from __future__ import absolute_import, division, print_function

import json
import os
import sys
import time

import pytest

from ansible_collections.mcp.platform.plugins.module_utils import postgres_failover as fo
from ansible_collections.mcp.platform.plugins.module_utils import postgres_rejoin as rj

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unit_support import PGBIN, Cluster, as_pg, gate, needs_pg, wait_for  # noqa: E402

# ----------------------------------------------------------------------------- plan decisions (pure)

SOURCE_DSN = "host=10.0.0.2 port=5432 user=postgres dbname=postgres"
RECEIVERS = {
    "primary": dict(in_recovery=False, status=None, sender_host=None, sender_port=None, timeline=None),
    "elsewhere": dict(in_recovery=True, status="streaming", sender_host="10.0.0.9", sender_port=5432, timeline=2),
    "down": None,
}


def facts(receiver="primary", running=True, standby_signal=False, hints=True, checksums=False, node_tli=1,
          state="in production", source_tli=2, checkpoint_tli=2, following=False):
    cd = {"Data page checksum version": "1" if checksums else "0", "wal_log_hints setting": "on" if hints else "off",
          "Latest checkpoint's TimeLineID": str(node_tli), "Database cluster state": state}
    return dict(source=dict(in_recovery=False, timeline=source_tli, checkpoint_timeline=checkpoint_tli),
                receiver=RECEIVERS[receiver], following=following, controldata=cd, running=running,
                standby_signal=standby_signal)


def actions(decision):
    return [s["action"] for s in decision["steps"]]


def test_plan_nothing_to_do_when_it_streams_from_the_source():
    f = dict(source=dict(in_recovery=False, timeline=2, checkpoint_timeline=2), following=True,
             receiver=dict(in_recovery=True, status="streaming", sender_host="10.0.0.2", sender_port=5432, timeline=2))
    d = rj.decide_rejoin(f, "/data")
    assert d["needed"] is False and d["method"] is None and d["steps"] == [] and d["prerequisites"] == {}
    assert d["node_state"]["sender"] == "10.0.0.2:5432" and d["node_state"]["timeline"] == 2
    assert rj.follows(f["receiver"], SOURCE_DSN)
    assert not rj.follows(RECEIVERS["elsewhere"], SOURCE_DSN) and not rj.follows(None, SOURCE_DSN)


def test_plan_running_old_primary_is_stopped_and_rewound():
    d = rj.decide_rejoin(facts(), "/data", port=5433, wait_seconds=90)
    assert d["needed"] and d["method"] == "rewind"
    assert actions(d) == ["stop", "rewind", "start", "wait_streaming"]
    stop, rewind, start, wait = d["steps"]
    assert "runs as a primary" in stop["reason"] and "pg_rewind needs it stopped" in stop["reason"]
    assert "wal_log_hints on, node timeline 1, source timeline 2" in rewind["reason"]
    assert rewind["fallback"] is None and "discarded" in rewind["changes"]
    assert start["changes"] == "pg_ctl start on port 5433" and "90 s" in wait["changes"]
    assert d["prerequisites"] == dict(data_checksums=False, wal_log_hints=True, node_timeline=1, source_timeline=2,
                                      cluster_state="in production", rewind_possible=True)
    assert rj.decide_rejoin(facts(checksums=True, hints=False), "/data")["method"] == "rewind"
    assert rj.decide_rejoin(facts(), "/data", allow_reclone=True)["steps"][1]["fallback"] == "reclone"


def test_plan_why_the_node_is_stopped():
    assert "does not stream from the new primary (receiver: streaming)" in rj.decide_rejoin(
        facts(receiver="elsewhere"), "/data")["steps"][0]["reason"]
    assert "does not accept connections" in rj.decide_rejoin(facts(receiver="down"), "/data")["steps"][0]["reason"]
    assert actions(rj.decide_rejoin(facts(receiver="down", running=False), "/data")) == [
        "rewind", "start", "wait_streaming"]


def test_plan_checkpoints_a_freshly_promoted_source_before_the_rewind():
    d = rj.decide_rejoin(facts(checkpoint_tli=1), "/data")
    assert actions(d) == ["stop", "checkpoint_source", "rewind", "start", "wait_streaming"]
    assert "pg_control still says timeline 1" in d["steps"][1]["reason"]
    # a re-clone needs no checkpoint (pg_basebackup -c fast takes its own)
    assert "checkpoint_source" not in actions(rj.decide_rejoin(facts(checkpoint_tli=1, hints=False), "/data",
                                                               allow_reclone=True))


def test_plan_reclone_only_when_allowed():
    with pytest.raises(rj.HAError, match="cannot rejoin /data: neither data checksums nor wal_log_hints is on: "
                                         "pg_rewind cannot run; set allow_reclone=true"):
        rj.decide_rejoin(facts(hints=False), "/data")
    d = rj.decide_rejoin(facts(hints=False), "/data/", allow_reclone=True)
    assert d["method"] == "reclone" and actions(d) == ["stop", "reclone", "start", "wait_streaming"]
    assert "pg_basebackup needs it stopped" in d["steps"][0]["reason"]
    assert "allow_reclone=true" in d["steps"][1]["reason"] and "/data.rejoin-<timestamp>" in d["steps"][1]["changes"]
    assert d["prerequisites"]["rewind_possible"] is False


def test_plan_node_ahead_of_the_source_is_not_rewound():
    with pytest.raises(rj.HAError, match="node timeline 3 is ahead of the source's 2"):
        rj.decide_rejoin(facts(node_tli=3), "/data")
    d = rj.decide_rejoin(facts(node_tli=3), "/data", allow_reclone=True)
    assert d["method"] == "reclone" and d["prerequisites"]["rewind_possible"] is False


def test_plan_resumes_a_stopped_standby_first():
    d = rj.decide_rejoin(facts(receiver="down", running=False, standby_signal=True, state="in archive recovery",
                               checkpoint_tli=1), "/data")
    assert actions(d) == ["resume", "checkpoint_source", "rewind", "start", "wait_streaming"]
    assert "standby.signal" in d["steps"][0]["reason"] and "stopped and the next steps run" in d["steps"][0]["changes"]
    # a data folder that was a primary when it stopped is not a standby to resume, signal file or not
    d = rj.decide_rejoin(facts(receiver="down", running=False, standby_signal=True), "/data")
    assert actions(d)[0] == "rewind"
    # a running node is stopped, never resumed
    assert actions(rj.decide_rejoin(facts(standby_signal=True, state="in archive recovery"), "/data"))[0] == "stop"


def test_plan_writes_primary_conninfo_before_the_start():
    d = rj.decide_rejoin(facts(), "/data", replication_conninfo=True)
    assert actions(d) == ["stop", "rewind", "primary_conninfo", "start", "wait_streaming"]
    assert d["steps"][2]["changes"] == "primary_conninfo appended to /data/postgresql.auto.conf"


def test_plan_refuses_bad_input_before_reading_anything(tmp_path):
    with pytest.raises(rj.HAError, match="data_dir /nonexistent/pgdata does not exist"):
        rj.plan_rejoin(SOURCE_DSN, SOURCE_DSN, "/nonexistent/pgdata", 5432)
    with pytest.raises(rj.HAError, match="pg_ctl not found in bin_dir %s" % tmp_path):
        rj.plan_rejoin(SOURCE_DSN, SOURCE_DSN, str(tmp_path), 5432, bin_dir=str(tmp_path))


def test_apply_a_plan_with_nothing_to_do_or_an_unknown_step():
    plan = dict(needed=False, method=None, steps=[], prerequisites={}, node="n", source="s", source_timeline=2,
                node_state=dict(timeline=2), msg="n already streams from s",
                options=dict(data_dir="/data", port=5432, bin_dir=PGBIN, os_user="postgres", log_file=None,
                             allow_reclone=False, replication_conninfo=False, wait_seconds=5, timeout=1))
    res = rj.apply_rejoin(plan, SOURCE_DSN, SOURCE_DSN)
    assert not res["changed"] and res["steps"] == [] and res["msg"] == "n already streams from s"
    assert res["timeline"] == 2 and res["plan"] is plan
    plan.update(needed=True, method="rewind", steps=[dict(action="format_disk", reason="no", changes=None)])
    with pytest.raises(rj.HAError, match="unknown rejoin step 'format_disk'"):
        rj.apply_rejoin(plan, SOURCE_DSN, SOURCE_DSN)


def test_check_mode_result_of_a_plan():
    plan = dict(needed=True, method="rewind", prerequisites={"wal_log_hints": True}, node="n", source="s",
                source_timeline=2, node_state={}, msg="would rejoin /data to s by rewind (steps: stop, rewind)",
                steps=[dict(action="stop", reason="r", changes="c"), dict(action="rewind", reason="r", changes="c")])
    res = rj.plan_result(plan)
    assert res["changed"] and res["method"] == "rewind" and res["steps"] == ["stop", "rewind"]
    assert res["plan"] is plan and res["msg"] == plan["msg"] and "commands" not in res


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
        res = fo.promote(c.primary.dsn, c.replica.dsn, confirmations=[True])
        assert res["failed"] and not res["changed"]
        assert gate(res, "primary_down")["passed"] is False
        assert "primary_down" in res["msg"]
        assert gate(res, "candidate_in_recovery")["passed"] is True
        assert c.replica.sql("SELECT pg_is_in_recovery()") == [(True,)]

    def test_2_needs_second_vantage_point(self):
        c = self.cluster
        c.primary.stop()
        res = fo.promote(c.primary.dsn, c.replica.dsn, confirmations=[])
        assert res["failed"] and "primary_down" in res["msg"]
        res = fo.promote(c.primary.dsn, c.replica.dsn,
                         confirmations=[{"name": "mcp-1", "down": True}, {"name": "mcp-2", "failed": False},
                                        {"name": "mcp-3", "unreachable": True}])
        assert res["failed"], "2 of 4 vantage points is no majority"
        assert "still see it: mcp-2; could not be asked: mcp-3; down from: controller, mcp-1" in res["msg"]
        assert [p["name"] for p in res["vantage_points"]] == ["controller", "mcp-1", "mcp-2", "mcp-3"]
        assert c.replica.sql("SELECT pg_is_in_recovery()") == [(True,)]

    def test_3_check_mode_predicts(self):
        c = self.cluster
        res = fo.promote(c.primary.dsn, c.replica.dsn, confirmations=[True], check_mode=True)
        assert res["changed"] and not res["failed"] and "would promote" in res["msg"]
        assert all(g["passed"] for g in res["gates"])
        assert c.replica.sql("SELECT pg_is_in_recovery()") == [(True,)]

    def test_4_promoted_accepts_writes(self):
        c = self.cluster
        res = fo.promote(c.primary.dsn, c.replica.dsn, confirmations=[True])
        assert res["changed"] and not res["failed"], res["msg"]
        assert res["timeline"] == 2
        assert res["rpo_bytes"] == 0 and res["rpo_seconds"] is not None
        self.timings["promote_duration_s"] = res["promote_duration"]
        self.timings["promote_total_s"] = res["duration"]
        c.replica.sql("INSERT INTO t VALUES (1001, 'after-promote')")
        assert c.replica.sql("SELECT count(*) FROM t") == [(101,)]

    def test_5_rerun_unchanged(self):
        c = self.cluster
        res = fo.promote(c.primary.dsn, c.replica.dsn, confirmations=[True])
        assert not res["changed"] and not res["failed"] and res["already_promoted"]

    def test_6_rejoin_after_divergence(self):
        c = self.cluster
        # The old primary comes back on its own and takes writes that the new primary never saw.
        c.primary.start()
        c.primary.sql("CREATE TABLE diverged AS SELECT g FROM generate_series(1, 1000) g")
        c.primary.sql("INSERT INTO t VALUES (2001, 'split-brain')")
        # Two primaries now: a promotion rerun must refuse (split brain), not say "unchanged".
        res = fo.promote(c.primary.dsn, c.replica.dsn, confirmations=[True])
        assert res["failed"] and "split brain" in res["msg"]
        plan = rj.rejoin(c.primary.dsn, c.replica.dsn, c.primary.data, c.primary.port, bin_dir=PGBIN,
                         os_user="postgres", log_file=c.primary.log, check_mode=True)
        assert plan["changed"] and plan["method"] == "rewind" and plan["steps"][0] == "stop"
        assert c.primary.running()
        # Check mode is the plan: ordered steps with reasons, nothing applied.
        p = plan["plan"]
        assert p["needed"] and p["method"] == "rewind" and plan["steps"] == [s["action"] for s in p["steps"]]
        assert [s for s in plan["steps"] if s != "checkpoint_source"] == ["stop", "rewind", "start", "wait_streaming"]
        assert "runs as a primary" in p["steps"][0]["reason"] and all(s["reason"] for s in p["steps"])
        assert p["prerequisites"]["wal_log_hints"] is True and p["node_state"]["in_recovery"] is False
        assert p["options"]["data_dir"] == c.primary.data and "commands" not in plan
        assert plan["msg"].startswith("would rejoin %s" % c.primary.data)
        again = rj.plan_rejoin(c.primary.dsn, c.replica.dsn, c.primary.data, c.primary.port, bin_dir=PGBIN,
                               os_user="postgres", log_file=c.primary.log)
        assert [s["action"] for s in again["steps"]] == plan["steps"] and c.primary.running()
        assert c.primary.sql("SELECT pg_is_in_recovery()") == [(False,)]
        t0 = time.monotonic()
        res = rj.rejoin(c.primary.dsn, c.replica.dsn, c.primary.data, c.primary.port, bin_dir=PGBIN,
                        os_user="postgres", log_file=c.primary.log, wait_seconds=60)
        self.timings["rejoin_s"] = round(time.monotonic() - t0, 3)
        assert res["changed"] and res["method"] == "rewind", res
        assert res["plan"]["method"] == "rewind" and "stop" in res["steps"] and "rewind" in res["steps"]
        assert res["steps"][-2:] == ["start", "streaming"] and res["commands"]
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
        res = rj.rejoin(c.primary.dsn, c.replica.dsn, c.primary.data, c.primary.port, bin_dir=PGBIN,
                        os_user="postgres", log_file=c.primary.log)
        assert not res["changed"] and "already streams" in res["msg"]
        assert res["plan"]["needed"] is False and res["plan"]["steps"] == [] and res["steps"] == []
        plan = rj.rejoin(c.primary.dsn, c.replica.dsn, c.primary.data, c.primary.port, bin_dir=PGBIN,
                         os_user="postgres", log_file=c.primary.log, check_mode=True)
        assert not plan["changed"] and "already streams" in plan["msg"] and plan["timeline"] == 2
        # And promotion reruns stay unchanged now that the old primary is a replica.
        res = fo.promote(c.primary.dsn, c.replica.dsn, confirmations=[True])
        assert not res["changed"] and not res["failed"]


@needs_pg
def test_rejoin_resumes_a_rejoin_interrupted_after_its_rewind():
    """The rewind ran (standby.signal written, cluster 'in archive recovery') but the node never started: a rerun
    starts it instead of rewinding again (which fails: the target was not shut down cleanly)."""
    c = Cluster()
    try:
        c.primary.stop()
        assert fo.promote(c.primary.dsn, c.replica.dsn, fenced=True)["changed"]
        c.replica.sql("CHECKPOINT")
        as_pg([PGBIN + "/pg_rewind", "--target-pgdata=" + c.primary.data, "--source-server=" + c.replica.dsn, "-R"])
        assert os.path.exists(os.path.join(c.primary.data, "standby.signal")) and not c.primary.running()
        plan = rj.rejoin(c.primary.dsn, c.replica.dsn, c.primary.data, c.primary.port, bin_dir=PGBIN,
                         os_user="postgres", log_file=c.primary.log, check_mode=True)
        assert plan["steps"][0] == "resume", plan
        assert "standby.signal" in plan["plan"]["steps"][0]["reason"] and plan["plan"]["node_state"]["running"] is False
        res = rj.rejoin(c.primary.dsn, c.replica.dsn, c.primary.data, c.primary.port, bin_dir=PGBIN,
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
        assert fo.promote(c.primary.dsn, c.replica.dsn, fenced=True)["changed"]
        with pytest.raises(rj.HAError, match="allow_reclone"):
            rj.rejoin(c.primary.dsn, c.replica.dsn, c.primary.data, c.primary.port, bin_dir=PGBIN, os_user="postgres",
                      log_file=c.primary.log)
        res = rj.rejoin(c.primary.dsn, c.replica.dsn, c.primary.data, c.primary.port, bin_dir=PGBIN,
                        os_user="postgres", log_file=c.primary.log, allow_reclone=True)
        assert res["changed"] and res["method"] == "reclone" and os.path.isdir(res["moved_aside"])
        assert res["plan"]["method"] == "reclone" and "wal_log_hints" in res["plan"]["steps"][0]["reason"]
        assert "reclone" in res["steps"] and "rewind" not in res["steps"]
        assert c.primary.sql("SELECT status FROM pg_stat_wal_receiver") == [("streaming",)]
    finally:
        c.destroy()
