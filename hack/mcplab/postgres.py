"""PostgreSQL on the lab's database nodes: the initial primary (initdb with checksums, so pg_rewind works), the
replica cloned from it across the bridge (streaming replication), the platform database and its seed.

Passwords are real here (scram-sha-256 for every network connection), so a wrong one is refused. After a
failover the roles may have swapped: whatever is there is kept. The server is started by each node's init,
as systemd would, from /var/lib/postgresql/<major>/main; the lab only creates the clusters.
"""
import os
import subprocess

from . import hosts as lab_hosts
from .common import CFG, ROOT, LabError, log

PG_BIN, PG_DATA = lab_hosts.PG_BIN, lab_hosts.PG_DATA
ADMIN_PW = CFG["lab_pg_admin_password"]
NETWORK = CFG["lab_network"]

CONF = """
# mcp lab
listen_addresses = '*'
wal_level = replica
max_wal_senders = 10
wal_keep_size = '256MB'
hot_standby = on
wal_log_hints = on
hot_standby_feedback = on
password_encryption = 'scram-sha-256'
# the lab's disks are throwaway: speed over durability
fsync = off
synchronous_commit = off
full_page_writes = on
"""


def has_cluster(name):
    return os.path.exists(os.path.join(lab_hosts.hdir(name, "postgresql"), PG_DATA.split("/var/lib/postgresql/")[1], "PG_VERSION"))


def as_postgres(name, argv, **kw):
    return lab_hosts.execute(name, argv, user="postgres", **kw)


def start(name):
    as_postgres(name, [PG_BIN + "/pg_ctl", "-D", PG_DATA, "-l", "/var/log/postgresql/postgresql.log", "-w", "-t", "60",
                       "start"], timeout=90)


def psql(address, sql, db="postgres", user="postgres", password=ADMIN_PW):
    env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="5")
    res = subprocess.run(["psql", "-h", address, "-U", user, "-d", db, "-XAtqc", sql], env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if res.returncode != 0:
        raise LabError("psql on %s failed: %s" % (address, res.stdout.strip().splitlines()[-1:]))
    return res.stdout.strip()


def init_primary(name):
    log("%s: initdb (PostgreSQL %s)" % (name, CFG["lab_pg_major"]))
    lab_hosts.execute(name, ["install", "-d", "-o", "postgres", "-g", "postgres", "-m", "755", "/var/lib/postgresql",
                             os.path.dirname(PG_DATA)])
    lab_hosts.execute(name, ["install", "-d", "-o", "postgres", "-g", "postgres", "-m", "700", PG_DATA])
    as_postgres(name, ["sh", "-c", "umask 077; printf '%s\\n' \"$0\" > /tmp/pw && " + PG_BIN + "/initdb -D " + PG_DATA +
                       " -U postgres -k -E UTF8 --locale=C.UTF-8 --auth-local=peer --auth-host=scram-sha-256 --pwfile=/tmp/pw"
                       " >/dev/null; rc=$?; rm -f /tmp/pw; exit $rc", ADMIN_PW])
    as_postgres(name, ["sh", "-c", "cat >> %s/postgresql.conf" % PG_DATA], input=CONF)
    as_postgres(name, ["sh", "-c", "cat >> %s/pg_hba.conf" % PG_DATA],
                input="host all all %s scram-sha-256\nhost replication all %s scram-sha-256\n" % (NETWORK, NETWORK))
    start(name)


def init_replica(name, primary_address):
    log("%s: pg_basebackup from %s (streaming replica)" % (name, primary_address))
    lab_hosts.execute(name, ["install", "-d", "-o", "postgres", "-g", "postgres", "-m", "755", "/var/lib/postgresql",
                             os.path.dirname(PG_DATA)])
    lab_hosts.execute(name, ["install", "-d", "-o", "postgres", "-g", "postgres", "-m", "700", PG_DATA])
    # -R writes primary_conninfo with the password it connected with: the replica reconnects by itself
    as_postgres(name, ["env", "PGPASSWORD=" + ADMIN_PW, PG_BIN + "/pg_basebackup", "-h", primary_address, "-U", "postgres",
                       "-D", PG_DATA, "-R", "-X", "stream", "-c", "fast", "-w"], timeout=300)
    start(name)


def ensure(hosts):
    nodes = {n: h for n, h in hosts.items() if h["kind"] == "pg"}
    if not nodes:
        return False
    changed = False
    primaries = [n for n, h in nodes.items() if h["vars"].get("mcp_postgres_initial_role", "replica") == "primary"]
    if len(primaries) != 1:
        raise LabError("the lab needs exactly one PostgreSQL node with mcp_postgres_initial_role: primary (found %d)"
                       % len(primaries))
    first = primaries[0]
    if not has_cluster(first):
        if any(has_cluster(n) for n in nodes):
            raise LabError("%s has no cluster but other nodes do: run `make lab-clean` to start the databases afresh" % first)
        init_primary(first)
        changed = True
    # the writer now: after a failover it may be another node
    writer = None
    for n, h in nodes.items():
        if has_cluster(n) and psql(h["address"], "select pg_is_in_recovery()") == "f":
            writer = writer or n
    if writer is None:
        raise LabError("no PostgreSQL node accepts writes (all in recovery?): run the failover playbook or `make lab-clean`")
    for n in nodes:
        if not has_cluster(n):
            init_replica(n, nodes[writer]["address"])
            changed = True
    addr = nodes[writer]["address"]
    user, pw, db = CFG["lab_db_user"], CFG["lab_db_password"], CFG["lab_db_name"]
    if psql(addr, "select 1 from pg_roles where rolname='%s'" % user) != "1":
        psql(addr, "create role %s login password '%s'" % (user, pw))
        changed = True
    if psql(addr, "select 1 from pg_database where datname='%s'" % db) != "1":
        psql(addr, "create database %s owner %s" % (db, user))
        changed = True
    seed = os.path.join(ROOT, "lab", "images", "seed.sql")
    if os.path.exists(seed) and psql(addr, "select to_regclass('public.audit_log') is null", db=db) == "t":
        env = dict(os.environ, PGPASSWORD=pw)
        res = subprocess.run(["psql", "-h", addr, "-U", user, "-d", db, "-XAtq", "-v", "ON_ERROR_STOP=1", "-f", seed],
                             env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if res.returncode != 0:
            raise LabError("seeding %s failed: %s" % (db, res.stdout.strip().splitlines()[-1:]))
        changed = True
    return changed


def roles(hosts):
    out = []
    for n, h in hosts.items():
        if h["kind"] != "pg":
            continue
        try:
            rec = psql(h["address"], "select pg_is_in_recovery()")
            out.append((n, "replica" if rec == "t" else "primary"))
        except LabError:
            out.append((n, "down"))
    return out
