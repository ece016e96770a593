"""postgres_topology: the failover's candidate, old primary and DATABASE_URL target, case by case."""

from ansible_collections.mcp.platform.plugins.module_utils.postgres_topology import decide_topology, describe_nodes, repoint, url_target

NODE_VARS = {"pg-1": {"ansible_host": "10.0.0.21"},
             "pg-2": {"ansible_host": "10.0.0.22", "mcp_postgres_port": 5433, "mcp_postgres_data_dir": "/srv/pg"}}
NODES = describe_nodes(NODE_VARS, "postgres", "postgres", "/var/lib/postgresql/15/main")
ON_1 = ["postgresql://app:pw@10.0.0.21:5432/mcp"] * 3
ON_2 = ["postgresql://app:pw@10.0.0.22:5433/mcp"] * 3


def test_nodes_take_inventory_addresses_ports_and_data_dirs():
    assert NODES["pg-1"] == {"host": "10.0.0.21", "port": 5432, "hostport": "10.0.0.21:5432", "data_dir": "/var/lib/postgresql/15/main",
                             "dsn": "host=10.0.0.21 port=5432 user=postgres dbname=postgres"}
    assert NODES["pg-2"]["hostport"] == "10.0.0.22:5433" and NODES["pg-2"]["data_dir"] == "/srv/pg"
    assert describe_nodes({"db": {}}, "u", "d", "/x")["db"]["host"] == "db"


def test_url_targets_of_uri_and_keyword_forms():
    assert url_target("postgresql://u:p@db.example.com/mcp") == "db.example.com:5432"
    assert url_target("postgres://u@[::1]:6432/x") == "[::1]:6432"
    assert url_target("host=10.0.0.9 port=5440 user=u password='a b'") == "10.0.0.9:5440"
    assert url_target("") == "" and url_target("dbname=x") == ""


def test_primary_down_the_replica_is_the_candidate_and_the_url_node_the_old_primary():
    t = decide_topology(NODES, {"pg-1": "down", "pg-2": "replica"}, ON_1, "failover", password_suffix=" password='s'")
    assert (t["candidate"], t["primary"], t["url_node"], t["problem"]) == ("pg-2", "pg-1", "pg-1", None)
    assert t["candidate_dsn"].endswith(" password='s'") and "10.0.0.22" in t["candidate_dsn"]
    assert "'s'" not in t["summary"] and "candidate pg-2, old primary pg-1" in t["summary"]


def test_switchover_back_with_no_replica_takes_the_primary_and_the_other_node():
    t = decide_topology(NODES, {"pg-1": "down", "pg-2": "primary"}, ON_2, "switchover", candidate="pg-1")
    assert (t["candidate"], t["primary"]) == ("pg-1", "pg-2")
    t = decide_topology(NODES, {"pg-1": "down", "pg-2": "primary"}, ON_2, "status")
    assert (t["candidate"], t["primary"], t["problem"]) == ("pg-2", "pg-1", None)


def test_an_interrupted_repoint_is_accepted_a_third_target_is_not():
    t = decide_topology(NODES, {"pg-1": "down", "pg-2": "primary"}, ON_1[:1] + ON_2[:2], "failover")
    assert t["problem"] is None and len(t["url_targets"]) == 2
    t = decide_topology(NODES, {"pg-1": "down", "pg-2": "replica"}, ON_1[:2] + ["postgresql://a@10.9.9.9/x"], "failover")
    assert "must agree" in t["problem"] and "-e failover_candidate=<host>" in t["problem"]
    assert decide_topology(NODES, {"pg-1": "down", "pg-2": "replica"}, ON_1[:2] + ["postgresql://a@10.9.9.9/x"],
                           "status")["problem"] is None


def test_no_candidate_or_no_primary_is_a_problem_naming_both():
    t = decide_topology(NODES, {"pg-1": "replica", "pg-2": "replica"}, ON_1, "failover")
    assert t["candidate"] == "" and t["problem"].startswith("cannot decide (no candidate)")
    three = dict(NODES, **describe_nodes({"pg-3": {"ansible_host": "10.0.0.23"}}, "postgres", "postgres", "/d"))
    t = decide_topology(three, {"pg-1": "down", "pg-2": "replica", "pg-3": "down"}, ["postgresql://a@10.0.0.22:5433/x"], "failover")
    assert t["problem"].startswith("cannot decide (no old primary)")   # DATABASE_URL already on the candidate, 3 nodes
    assert decide_topology(three, {"pg-2": "replica"}, [], "rejoin", candidate="pg-2")["problem"] is None


def test_explicit_names_and_dsns_win():
    t = decide_topology(NODES, {"pg-1": "primary", "pg-2": "replica"}, ON_1, "switchover", candidate="pg-1", primary="pg-2",
                        candidate_dsn="host=elsewhere")
    assert (t["candidate"], t["primary"], t["candidate_dsn"]) == ("pg-1", "pg-2", "host=elsewhere")
    assert "candidate from failover_candidate_dsn" in t["summary"]


def test_repoint_keeps_user_password_and_options():
    assert repoint("postgresql://app:p%40ss@10.0.0.21:5432/mcp?sslmode=require", "10.0.0.22:5433") == \
        "postgresql://app:p%40ss@10.0.0.22:5433/mcp?sslmode=require"
    assert repoint("postgresql://10.0.0.21/mcp", "db2:5432") == "postgresql://db2:5432/mcp"
    assert repoint("host=10.0.0.21 port=5432 user=app password='a b'", "10.0.0.22:5433") == \
        "host=10.0.0.22 port=5433 user=app password='a b'"
    assert repoint("user=app dbname=mcp", "db2:6432") == "user=app dbname=mcp host=db2 port=6432"


def test_where_the_old_primary_and_the_candidate_listen():
    t = decide_topology(NODES, {"pg-1": "down", "pg-2": "replica"}, ON_1, "failover")
    assert (t["primary_host"], t["primary_port"], t["candidate_hostport"]) == ("10.0.0.21", 5432, "10.0.0.22:5433")
    t = decide_topology(NODES, {"pg-2": "replica"}, ON_1, "failover", primary_dsn="host=10.1.1.1 port=6000 user=x")
    assert (t["primary_host"], t["primary_port"]) == ("10.1.1.1", 6000)
