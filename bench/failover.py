#!/usr/bin/env python3
"""Issue 5 timings on the lab of real hosts (prints, asserts nothing), then puts the lab back.

* maintenance latency: mcp.platform.maintenance -e maintenance_action=enable -> 503 through every MCP host's gateway
  (target <= 2 s), measured from the moment each host's gateway file (/var/lib/mcp/gateway/dynamic/maintenance.yml
  on the host, read through the lab's bind mount of its /var/lib/mcp) is written and from the playbook's return;
* RTO: the primary's PostgreSQL killed (pg_ctl -m immediate, run as root on the primary node through the lab's
  backdoor: a fault, not a procedure), then mcp.platform.failover -e failover_action=failover, measured from the start of the
  ansible-playbook process until the new primary (the replica node, over the bridge) accepts a write AND every MCP
  host's DATABASE_URL points at its address (target <= 15 s), watched from the controller by a poller; also the
  RTO the playbook prints (from its first task);
* service RTO: from the same start until every replica on every MCP host runs with the new primary's DATABASE_URL
  (engine inspect) and every service answers 200 through every gateway (target <= 20 s);
* rejoin: mcp.platform.failover -e failover_action=rejoin (pg_rewind of the old primary over SSH; target <= 30 s), wall
  time and the module's own;
* then -e failover_action=switchover -e failover_candidate=<the inventory's primary> restores the original layout
  (primary and replica as in inventories/lab/hosts.yml, every DATABASE_URL on the primary).

The whole run holds the fleet lock (waiting for other operations first), and runs the playbooks under it. The
playbooks run from the installed collection (make install) over SSH against inventories/lab.
    .venv/bin/python bench/failover.py

Figures on the old one-machine lab (both PostgreSQL servers on 127.0.0.1) were not recorded in this file or its history.
"""
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

import psycopg2
from benchlab import (
    CFG,
    HOSTS,
    LAB_DIR,
    MCP_HOSTS,
    PG_BIN,
    PG_DATA,
    PRIMARY,
    REPLICA,
    ROOT,
    ansible_env,
    engine_socket,
    gateway,
    host_path,
    import_installed,
    lab_up,
    labhosts,
    pg_dsn,
    playbook_argv,
)

import_installed()
from ansible_collections.mcp.platform.plugins.module_utils import fleet_lock  # noqa: E402  pylint: disable=wrong-import-position

OWNER = "bench-failover-%s" % uuid.uuid4().hex[:8]
LOCK = os.path.join(LAB_DIR, "fleet.lock")  # mcp_fleet_lock_path of the lab inventory, on the controller
ENV = ansible_env()
PG_CTL = ["runuser", "-u", "postgres", "--", PG_BIN + "/pg_ctl", "-D", PG_DATA]


def playbook(name, *extra, background=False):
    argv = playbook_argv(name, *extra)
    if name == "failover.yml":
        argv += ["-e", "failover_lock_owner=" + OWNER, "-e", "failover_lock_release=false"]
    else:
        argv += ["-e", "maintenance_lock_owner=" + OWNER, "-e", "maintenance_lock_release=false"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if background:
        return proc
    out = proc.communicate()[0]
    if proc.returncode:
        raise SystemExit("%s %s failed:\n%s" % (name, " ".join(extra), out[-4000:]))
    return out


def role(node):
    try:
        conn = psycopg2.connect(pg_dsn(node, timeout=2))
    except psycopg2.Error:
        return "down"
    try:
        with conn.cursor() as cur:
            cur.execute("select pg_is_in_recovery()")
            return "replica" if cur.fetchone()[0] else "primary"
    finally:
        conn.close()


def writable(node):
    try:
        conn = psycopg2.connect(pg_dsn(node, timeout=1))
    except psycopg2.Error:
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("begin read write; create temp table bench_probe (x int); insert into bench_probe values (1)")
        return True
    except psycopg2.Error:
        return False
    finally:
        conn.close()


def urls_point_at(node):
    """Every MCP host's DATABASE_URL (its /etc/mcp/platform.env, read through the lab's bind mount) on `node`."""
    for host in MCP_HOSTS:
        with open(host_path(host, "/etc/mcp/platform.env")) as f:
            if "@%s:5432/" % HOSTS[node] not in f.read():
                return False
    return True


def services_follow(node):
    """Every running replica on every MCP host has its DATABASE_URL on ``node`` (engine inspect over the host's socket)
    and every service answers /health through every gateway: the services use the new primary."""
    import docker  # the node venv's SDK, in .venv too
    for host in MCP_HOSTS:
        api = docker.APIClient(base_url="unix://" + engine_socket(host), timeout=5)
        try:
            for c in api.containers(filters={"label": ["io.mcp-platform.managed=true", "io.mcp-platform.host=" + host]}):
                env = (api.inspect_container(c["Id"]).get("Config") or {}).get("Env") or []
                url = [e for e in env if e.startswith("DATABASE_URL=")]
                if not url or "@%s:5432/" % HOSTS[node] not in url[0]:
                    return False
        finally:
            api.close()
        if any(gateway_code(host, s) != 200 for s in CFG["lab_services"]):
            return False
    return True


def gateway_code(host, service):
    url = "%s/mcp/%s/health" % (gateway(host), service)
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def take_lock():
    while True:
        try:
            fleet_lock.acquire(LOCK, OWNER, "bench/failover.py", ttl=1800)
            return
        except fleet_lock.LockError as exc:
            print("waiting for the fleet lock: %s" % exc, flush=True)
            time.sleep(5)


def bench_maintenance():
    service = "git"
    seen = {}
    stop = threading.Event()
    gw_files = {h: host_path(h, "/var/lib/mcp/gateway/dynamic/maintenance.yml") for h in MCP_HOSTS}

    def poll():
        while not stop.is_set() and len(seen) < len(MCP_HOSTS):
            for h in MCP_HOSTS:
                if h not in seen and gateway_code(h, service) == 503:
                    seen[h] = time.time()
            time.sleep(0.02)
    t = threading.Thread(target=poll, daemon=True)
    t.start()
    out = playbook("maintenance.yml", "-e", "maintenance_action=enable", "-e", "services=" + service,
                   "-e", json.dumps({"message": "bench window"}), "-e", "ttl=300")
    t_end = time.time()
    deadline = time.time() + 10
    while len(seen) < len(MCP_HOSTS) and time.time() < deadline:
        time.sleep(0.05)
    stop.set()
    per_host = {h: (seen[h] - os.path.getmtime(gw_files[h])) if h in seen and os.path.exists(gw_files[h]) else None
                for h in MCP_HOSTS}
    after_end = max(0.0, max(seen.values()) - t_end) if len(seen) == len(MCP_HOSTS) else None
    playbook("maintenance.yml", "-e", "maintenance_action=disable", "-e", "services=" + service)
    del out
    return per_host, after_end


def bench_failover():
    labhosts.execute(PRIMARY, PG_CTL + ["-m", "immediate", "stop"])
    t0 = time.time()
    proc = playbook("failover.yml", "-e", "failover_action=failover", background=True)
    t_rto = t_service = None
    while proc.poll() is None and t_service is None:
        if t_rto is None and urls_point_at(REPLICA) and writable(REPLICA):
            t_rto = time.time()
        if t_rto is not None and services_follow(REPLICA):
            t_service = time.time()
        else:
            time.sleep(0.05)
    out = proc.communicate()[0]
    t_done = time.time()
    if proc.returncode:
        raise SystemExit("failover failed:\n" + out[-4000:])
    if t_rto is None and urls_point_at(REPLICA):
        t_rto = t_done
    if t_service is None and services_follow(REPLICA):
        t_service = time.time()
    printed = re.search(r"RTO: ([0-9.]+) s", out)
    return ((t_rto - t0) if t_rto else None, float(printed.group(1)) if printed else None, t_done - t0,
            (t_service - t0) if t_service else None)


def bench_rejoin():
    t0 = time.time()
    out = playbook("failover.yml", "-e", "failover_action=rejoin")
    wall = time.time() - t0
    m = re.search(r"rejoin %s: .* \((\w+), ([0-9.]+) s\)" % re.escape(PRIMARY), out)
    return wall, (m.group(1), float(m.group(2))) if m else (None, None)


def restore():
    if role(PRIMARY) == "down" and role(REPLICA) == "replica":
        # nothing was promoted (the failover itself failed): start the old primary again, as the lab's boot would
        labhosts.execute(PRIMARY, PG_CTL + ["-l", "/var/log/postgresql/postgresql.log", "-w", "start"])
    if role(PRIMARY) == "down":
        playbook("failover.yml", "-e", "failover_action=rejoin")
    if role(PRIMARY) != "primary" or not urls_point_at(PRIMARY):
        playbook("failover.yml", "-e", "failover_action=switchover", "-e", "failover_candidate=" + PRIMARY, "-e", "failover_restart_serial=3")
    playbook("maintenance.yml", "-e", "maintenance_action=disable")


def main():
    lab_up()
    if role(PRIMARY) != "primary" or role(REPLICA) != "replica" or not urls_point_at(PRIMARY):
        raise SystemExit("the lab is not in its original layout (%s primary, %s replica, every DATABASE_URL on %s)"
                         % (PRIMARY, REPLICA, PRIMARY))
    take_lock()
    try:
        per_host, after_end = bench_maintenance()
        rto_outside, rto_printed, failover_total, service_rto = bench_failover()
        rejoin_wall, (method, rejoin_module) = bench_rejoin()
    finally:
        restore()
        fleet_lock.release(LOCK, OWNER)
    fmt = lambda v: "n/a" if v is None else "%.2f s" % v  # noqa: E731
    print("maintenance enable -> 503 (gateway file written -> 503, per host): %s   (target <= 2 s)"
          % ", ".join("%s %s" % (h, fmt(v)) for h, v in sorted(per_host.items())))
    print("maintenance enable -> 503 on every host after the playbook returned: %s" % fmt(after_end))
    print("failover RTO (process start -> new primary writable and every DATABASE_URL repointed): %s   (target <= 15 s)"
          % fmt(rto_outside))
    print("failover RTO printed by the playbook (from its first task): %s" % fmt(rto_printed))
    print("failover service RTO (process start -> every replica on every host has the new primary's DATABASE_URL and every"
          " service answers 200 through every gateway): %s   (target <= 20 s)" % fmt(service_rto))
    print("failover.yml total (with the restart of every host at once and the health verification): %s" % fmt(failover_total))
    print("rejoin (failover.yml -e failover_action=rejoin, wall): %s; pg_rewind rejoin itself (%s): %s   (target <= 30 s)"
          % (fmt(rejoin_wall), method, fmt(rejoin_module)))
    codes = sorted({gateway_code(h, s) for h in MCP_HOSTS for s in CFG["lab_services"]}, key=str)
    print("lab after the run: %s %s, %s %s, every DATABASE_URL on %s: %s, gateway answers %s"
          % (PRIMARY, role(PRIMARY), REPLICA, role(REPLICA), PRIMARY, urls_point_at(PRIMARY), codes))


if __name__ == "__main__":
    main()
