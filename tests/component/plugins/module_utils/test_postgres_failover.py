# -*- coding: utf-8 -*-
"""postgres_failover: promotion against real throwaway PostgreSQL 15 clusters (primary + streaming replica,
``pg_cluster``), then the module through ``ansible`` (``run_module``); tests/component/conftest.py.

The pure vote and gates are in tests/unit; the ordered promote -> diverge -> rejoin flow is in test_postgres_rejoin.py.
"""

from __future__ import absolute_import, division, print_function

from support.ports import free_port
from support.postgres import gate, needs_pg
from support.waiting import wait_for

from ansible_collections.mcp.platform.plugins.module_utils import postgres_failover as ha

# ----------------------------------------------------------------------------- real clusters


@needs_pg
def test_lag_gate_refuses_then_force(pg_cluster):
    c = pg_cluster()
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


# ----------------------------------------------------------------------------- through ansible

def test_module_bad_input_messages_without_password(run_module):
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


def test_module_postgres_password_fills_both_dsns_never_shown(run_module):
    """postgres_password (or PGPASSWORD) is the password of the DSNs that carry none; it never reaches the output."""
    port = free_port()
    rc, out = run_module("mcp.platform.mcp_failover",
                         "state=status primary_dsn='host=127.0.0.1 port=%d user=x' "
                         "candidate_dsn='host=127.0.0.1 port=%d user=x' postgres_password=Hunter3Shared"
                         % (free_port(), port))
    assert rc != 0
    assert "cannot connect to candidate_dsn" in out and "127.0.0.1:%d" % port in out
    assert "Hunter3Shared" not in out
    rc, out = run_module("mcp.platform.mcp_failover",
                         "state=status primary_dsn='host=127.0.0.1 port=%d user=x' "
                         "candidate_dsn='host=127.0.0.1 port=%d user=x'" % (free_port(), port),
                         extra_env={"PGPASSWORD": "Hunter4FromEnv"})
    assert rc != 0 and "cannot connect to candidate_dsn" in out
    assert "Hunter4FromEnv" not in out
    rc, out = run_module("mcp.platform.mcp_failover",
                         "state=status candidate_dsn='host=127.0.0.1 port=5432 password=Hunter5Secret bogus'")
    assert rc != 0 and "candidate_dsn is not a valid libpq connection string" in out
    assert "Hunter5Secret" not in out
