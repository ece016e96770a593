#!/usr/bin/env python3
"""Issue 5 timings on the lab (prints, asserts nothing), then puts the lab back.

* maintenance latency: maintenance.yml -e action=enable -> 503 through every host's gateway (target <= 2 s), measured
  from the moment each host's gateway file is written and from the playbook's return;
* RTO: the primary killed (pg_ctl -m immediate), then failover.yml -e action=failover, measured from the start of the
  ansible-playbook process until the new primary accepts a write AND every host's DATABASE_URL points at it
  (target <= 15 s), watched from outside by a poller; also the RTO the playbook prints (from its first task);
* rejoin: failover.yml -e action=rejoin (pg_rewind of the old primary; target <= 30 s), wall time and the module's own;
* then failover.yml -e action=switchover -e failover_candidate=pg-1 restores the original layout.

The whole run holds the fleet lock (waiting for other operations first), and runs the playbooks under it.
    .venv/bin/python bench/failover.py
"""
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB = os.path.abspath(os.environ.get("MCP_LAB_DIR", os.path.join(ROOT, ".lab")))
sys.path.insert(0, os.path.join(ROOT, ".build", "collections"))
from ansible_collections.mcp.platform.plugins.module_utils import fleet_lock  # noqa: E402  pylint: disable=wrong-import-position

import psycopg2  # noqa: E402  pylint: disable=wrong-import-position
import yaml  # noqa: E402  pylint: disable=wrong-import-position

with open(os.path.join(ROOT, "inventories", "lab", "group_vars", "all", "lab.yml")) as _f:
    CFG = yaml.safe_load(_f)
HOSTS = sorted(CFG["lab_hosts"])
OWNER = "bench-failover-%s" % uuid.uuid4().hex[:8]
LOCK = os.path.join(LAB, "fleet.lock")
ENV = dict(os.environ, MCP_LAB_DIR=LAB, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
           ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"),
           ANSIBLE_PYTHON_INTERPRETER=os.path.join(ROOT, ".venv", "bin", "python"))


def playbook(name, *extra, background=False):
    argv = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", os.path.join(ROOT, "inventories", "lab"),
            os.path.join(ROOT, "playbooks", name)] + list(extra)
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


def role(port):
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=2)
    except psycopg2.Error:
        return "down"
    try:
        with conn.cursor() as cur:
            cur.execute("select pg_is_in_recovery()")
            return "replica" if cur.fetchone()[0] else "primary"
    finally:
        conn.close()


def writable(port):
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=1)
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


def urls_point_at(port):
    for host in HOSTS:
        with open(os.path.join(LAB, "hosts", host, "etc", "mcp", "platform.env")) as f:
            if "@127.0.0.1:%d/" % port not in f.read():
                return False
    return True


def gateway_code(host, service):
    url = "http://%s:%d/mcp/%s/health" % (CFG["lab_hosts"][host], CFG["lab_gateway_http_port"], service)
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
    gw_files = {h: os.path.join(LAB, "hosts", h, "var", "lib", "mcp", "gateway", "dynamic", "maintenance.yml") for h in HOSTS}

    def poll():
        while not stop.is_set() and len(seen) < len(HOSTS):
            for h in HOSTS:
                if h not in seen and gateway_code(h, service) == 503:
                    seen[h] = time.time()
            time.sleep(0.02)
    t = threading.Thread(target=poll, daemon=True)
    t.start()
    out = playbook("maintenance.yml", "-e", "action=enable", "-e", "services=" + service,
                   "-e", json.dumps({"message": "bench window"}), "-e", "ttl=300")
    t_end = time.time()
    deadline = time.time() + 10
    while len(seen) < len(HOSTS) and time.time() < deadline:
        time.sleep(0.05)
    stop.set()
    per_host = {h: (seen[h] - os.path.getmtime(gw_files[h])) if h in seen and os.path.exists(gw_files[h]) else None
                for h in HOSTS}
    after_end = max(0.0, max(seen.values()) - t_end) if len(seen) == len(HOSTS) else None
    playbook("maintenance.yml", "-e", "action=disable", "-e", "services=" + service)
    del out
    return per_host, after_end


def bench_failover():
    subprocess.run(["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_ctl", "-D",
                    os.path.join(LAB, "pg", "primary"), "-m", "immediate", "stop"], check=True, stdout=subprocess.DEVNULL)
    t0 = time.time()
    proc = playbook("failover.yml", "-e", "action=failover", background=True)
    t_rto = None
    while proc.poll() is None and t_rto is None:
        if urls_point_at(CFG["lab_postgres_replica_port"]) and writable(CFG["lab_postgres_replica_port"]):
            t_rto = time.time()
        else:
            time.sleep(0.05)
    out = proc.communicate()[0]
    t_done = time.time()
    if proc.returncode:
        raise SystemExit("failover failed:\n" + out[-4000:])
    if t_rto is None and urls_point_at(CFG["lab_postgres_replica_port"]):
        t_rto = t_done
    printed = re.search(r"RTO: ([0-9.]+) s", out)
    return (t_rto - t0) if t_rto else None, float(printed.group(1)) if printed else None, t_done - t0


def bench_rejoin():
    t0 = time.time()
    out = playbook("failover.yml", "-e", "action=rejoin")
    wall = time.time() - t0
    m = re.search(r"rejoin pg-1: .* \((\w+), ([0-9.]+) s\)", out)
    return wall, (m.group(1), float(m.group(2))) if m else (None, None)


def restore():
    if role(CFG["lab_postgres_primary_port"]) == "down":
        playbook("failover.yml", "-e", "action=rejoin")
    if role(CFG["lab_postgres_primary_port"]) != "primary" or not urls_point_at(CFG["lab_postgres_primary_port"]):
        playbook("failover.yml", "-e", "action=switchover", "-e", "failover_candidate=pg-1", "-e", "failover_restart_serial=3")
    playbook("maintenance.yml", "-e", "action=disable")


def main():
    if role(CFG["lab_postgres_primary_port"]) != "primary" or role(CFG["lab_postgres_replica_port"]) != "replica":
        raise SystemExit("the lab is not in its original layout (pg-1 primary, pg-2 replica); run make lab-up")
    take_lock()
    try:
        per_host, after_end = bench_maintenance()
        rto_outside, rto_printed, failover_total = bench_failover()
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
    print("failover.yml total (with the host-by-host restart and health verification): %s" % fmt(failover_total))
    print("rejoin (failover.yml -e action=rejoin, wall): %s; pg_rewind rejoin itself (%s): %s   (target <= 30 s)"
          % (fmt(rejoin_wall), method, fmt(rejoin_module)))


if __name__ == "__main__":
    main()
