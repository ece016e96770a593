# -*- coding: utf-8 -*-
"""mcp_failover end to end: the real ``ansible`` CLI runs the module (``run_module_result``) against a real PostgreSQL
15 primary and streaming replica (``pg_cluster``); tests/component/conftest.py. The gates and the rejoin variants are
in tests/component/plugins/module_utils/test_postgres_failover.py and test_postgres_rejoin.py."""
from __future__ import absolute_import, division, print_function

from support.postgres import PGBIN, gate, needs_pg
from support.waiting import wait_for


@needs_pg
def test_promote_twice_promotes_replica_then_unchanged(run_module_result, pg_cluster):
    """failover.yml is rerun after a partial run (a host that could not be repointed): the second promotion must find
    the candidate already a primary and change nothing (no second pg_promote, same timeline, the writes kept).
    Check mode evaluates the gates and leaves the replica in recovery."""
    c = pg_cluster()
    c.primary.sql("CREATE TABLE orders (id int PRIMARY KEY)")
    c.primary.sql("INSERT INTO orders VALUES (1)")
    c.primary.stop()
    args = {"state": "promoted", "primary_dsn": c.primary.dsn, "candidate_dsn": c.replica.dsn, "connect_timeout": 2,
            "primary_down_confirmations": [{"name": "mcp-1", "down": True, "detail": "connection refused"}]}

    proc, result = run_module_result("mcp_failover", args, "--check")
    assert proc.returncode == 0 and result["changed"] is True, proc.stdout + proc.stderr
    assert result["msg"].startswith("would promote 127.0.0.1:%d" % c.replica.port), result["msg"]
    assert all(g["passed"] for g in result["gates"]), result["gates"]
    assert c.replica.sql("SELECT pg_is_in_recovery()") == [(True,)]

    proc, result = run_module_result("mcp_failover", args)
    assert proc.returncode == 0 and result["changed"] is True and result["already_promoted"] is False, proc.stdout + proc.stderr
    assert result["timeline"] == 2 and result["forced"] is False
    assert gate(result, "primary_down")["passed"] is True
    assert c.replica.sql("SELECT pg_is_in_recovery()") == [(False,)]
    c.replica.sql("INSERT INTO orders VALUES (2)")  # the new primary accepts writes
    assert c.replica.sql("SELECT id FROM orders ORDER BY id") == [(1,), (2,)]

    proc, again = run_module_result("mcp_failover", args)
    assert proc.returncode == 0 and again["changed"] is False and again["already_promoted"] is True, proc.stdout + proc.stderr
    assert again["timeline"] == 2
    assert "is already a primary (timeline 2); nothing to do" in again["msg"]
    # the timeline from the current WAL file name (pg_control's checkpoint lags behind a fast promotion)
    assert c.replica.sql("SELECT pg_is_in_recovery(), substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)") == [(False, "00000002")]
    assert c.replica.sql("SELECT id FROM orders ORDER BY id") == [(1,), (2,)]
    assert not c.primary.running()


@needs_pg
def test_rejoin_twice_makes_old_primary_stream_then_unchanged(run_module_result, pg_cluster):
    """The rejoin of the old primary is rerun with the failover play: once the node streams from the new primary the
    second run must find nothing to do (no stop, no pg_rewind). Check mode plans the rewind and leaves the node down."""
    c = pg_cluster()
    c.primary.sql("CREATE TABLE orders (id int PRIMARY KEY)")
    c.primary.stop()
    proc, dummy = run_module_result("mcp_failover", {"state": "promoted", "primary_dsn": c.primary.dsn, "candidate_dsn": c.replica.dsn,
                                                     "connect_timeout": 2, "primary_down_confirmations": [True]})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    c.replica.sql("INSERT INTO orders VALUES (1)")
    args = {"state": "rejoined", "primary_dsn": c.primary.dsn, "candidate_dsn": c.replica.dsn, "data_dir": c.primary.data,
            "port": c.primary.port, "bin_dir": PGBIN, "log_file": c.primary.log, "wait_seconds": 60}

    proc, result = run_module_result("mcp_failover", args, "--check")
    assert proc.returncode == 0 and result["changed"] is True, proc.stdout + proc.stderr
    assert result["plan"]["method"] == "rewind" and "rewind" in [s["action"] for s in result["plan"]["steps"]]
    assert not c.primary.running()

    proc, result = run_module_result("mcp_failover", args)
    assert proc.returncode == 0 and result["changed"] is True and result["method"] == "rewind", proc.stdout + proc.stderr
    assert c.primary.sql("SELECT pg_is_in_recovery()") == [(True,)]
    assert c.primary.sql("SELECT status FROM pg_stat_wal_receiver") == [("streaming",)]
    wait_for(lambda: c.primary.sql("SELECT id FROM orders") == [(1,)], 10)  # the new primary's write arrives
    started = c.primary.sql("SELECT pg_postmaster_start_time()")

    proc, again = run_module_result("mcp_failover", args)
    assert proc.returncode == 0 and again["changed"] is False, proc.stdout + proc.stderr
    assert again["method"] is None and again["steps"] == [] and again["plan"]["needed"] is False
    assert "already streams" in again["msg"]
    assert c.primary.sql("SELECT pg_postmaster_start_time()") == started, "the second run restarted the node"
    assert c.primary.sql("SELECT status FROM pg_stat_wal_receiver") == [("streaming",)]
