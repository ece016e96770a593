# -*- coding: utf-8 -*-
"""postgres_rejoin: the plan decisions (pure: facts in, steps out; nothing runs). The whole failover flow and the
rejoin variants against real throwaway PostgreSQL 15 clusters are in tests/component."""

from __future__ import absolute_import, division, print_function

import pytest
from support.postgres import PGBIN

from ansible_collections.mcp.platform.plugins.module_utils import postgres_rejoin as rj

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
