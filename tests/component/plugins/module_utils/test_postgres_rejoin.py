# -*- coding: utf-8 -*-
"""postgres_rejoin: the whole failover flow and the rejoin variants against real throwaway PostgreSQL 15 clusters
(``pg_cluster_for_class`` for the ordered flow, ``pg_cluster`` for the others; tests/component/conftest.py).
The plan decisions are in tests/unit."""

from __future__ import absolute_import, division, print_function

import json
import os
import sys
import time

import pytest
from support.postgres import PGBIN, as_pg, gate, needs_pg
from support.waiting import wait_for

from ansible_collections.mcp.platform.plugins.module_utils import postgres_failover as fo
from ansible_collections.mcp.platform.plugins.module_utils import postgres_rejoin as rj

# ----------------------------------------------------------------------------- real clusters


@needs_pg
class TestFailoverFlow:
    """Ordered: refuse (primary up) → check mode → promote → rerun → diverge → rejoin → rerun."""

    cluster = None
    timings = {}

    @pytest.fixture(scope="class", autouse=True)
    def _flow_cluster(self, request, pg_cluster_for_class):
        cls = request.cls
        cls.cluster = pg_cluster_for_class
        cls.cluster.primary.sql("CREATE TABLE t (id int primary key, v text)")
        cls.cluster.primary.sql("INSERT INTO t SELECT g, 'before' FROM generate_series(1, 100) g")
        yield
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
def test_rejoin_resumes_a_rejoin_interrupted_after_its_rewind(pg_cluster):
    """The rewind ran (standby.signal written, cluster 'in archive recovery') but the node never started: a rerun
    starts it instead of rewinding again (which fails: the target was not shut down cleanly)."""
    c = pg_cluster()
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


@needs_pg
def test_reclone_when_rewind_impossible(pg_cluster):
    """Old primary without wal_log_hints/checksums: refused unless allow_reclone, then cloned afresh."""
    c = pg_cluster()
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
