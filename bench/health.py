#!/usr/bin/env python3
"""Issue 3 speed: concurrent checks and the daily check's scaling over hosts (prints, asserts nothing).

1. 40 checks, 10 of them HTTP endpoints that take 300 ms (the lab service's /slow route through the
   gateways): the module's wall time against its slowest single check, and against running the same
   checks one after another (what `mcp health` in a shell loop would do).
2. daily_check.yml over 30 generated inventory hosts (pointing at the lab's three gateways) against
   the same playbook over 1 host.
Run: .venv/bin/python bench/health.py   (the lab must be up: make lab-up)
"""
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import conftest  # noqa: E402  makes ansible_collections.mcp.platform importable
import yaml  # noqa: E402

from ansible_collections.mcp.platform.plugins.module_utils.health_probes import validate_checks  # noqa: E402
from ansible_collections.mcp.platform.plugins.module_utils.health_runner import run_check, run_checks  # noqa: E402

LAB = os.path.abspath(os.environ.get("MCP_LAB_DIR", os.path.join(ROOT, ".lab")))
CFG = yaml.safe_load(open(os.path.join(ROOT, "inventories/lab/group_vars/all/lab.yml")))
VENV = os.path.join(ROOT, ".venv", "bin")


def forty_checks():
    hosts = list(CFG["lab_hosts"].values())
    port, tls = CFG["lab_gateway_http_port"], CFG["lab_gateway_https_port"]
    checks = []
    for i in range(10):
        checks.append({"name": "slow-%d" % i, "type": "http",
                       "url": "http://%s:%d/mcp/filesystem/slow?ms=300" % (hosts[i % 3], port)})
    for i in range(10):
        checks.append({"name": "health-%d" % i, "type": "http",
                       "url": "http://%s:%d/mcp/git/health" % (hosts[i % 3], port)})
    for i in range(6):
        checks.append({"name": "mcp-%d" % i, "type": "mcp",
                       "url": "http://%s:%d/mcp/%s/mcp" % (hosts[i % 3], port, CFG["lab_services"][i % 2])})
    for i in range(3):
        checks.append({"name": "tls-%d" % i, "type": "tls", "host": hosts[i], "port": tls})
    for i in range(3):
        checks.append({"name": "tcp-%d" % i, "type": "tcp", "host": hosts[i], "port": port})
    checks += [
        {"name": "pg-primary", "type": "postgres", "dsn": "host=127.0.0.1 port=%d user=postgres dbname=postgres" % CFG["lab_postgres_primary_port"]},
        {"name": "pg-replica", "type": "postgres", "dsn": "host=127.0.0.1 port=%d user=postgres dbname=postgres" % CFG["lab_postgres_replica_port"]},
        {"name": "redis", "type": "redis", "url": "redis://127.0.0.1:%d/0" % CFG["lab_redis_port"]},
        {"name": "containers-fs", "type": "container", "docker_host": "unix://%s/podman/podman.sock" % LAB, "service": "filesystem"},
        {"name": "containers-git", "type": "container", "docker_host": "unix://%s/podman/podman.sock" % LAB, "service": "git"},
        {"name": "disk", "type": "disk", "path": "/"},
        {"name": "memory", "type": "memory"},
        {"name": "tcp-registry", "type": "tcp", "host": "127.0.0.1", "port": CFG["lab_registry_port"]},
    ]
    assert len(checks) == 40
    return validate_checks(checks)


def bench_checks():
    checks = forty_checks()
    run_checks(checks[:5])  # warm up connections and imports
    t0 = time.monotonic()
    results = run_checks(checks, concurrency=40)
    wall = time.monotonic() - t0
    slowest = max(r["latency_ms"] for r in results) / 1000.0
    t0 = time.monotonic()
    for c in checks:
        run_check(c)
    serial = time.monotonic() - t0
    bad = [r["name"] for r in results if r["status"] != "ok"]
    print("1. 40 checks (10 x 300 ms HTTP) concurrently: %.2f s; slowest single check %.2f s; "
          "ratio %.2f (target <= 1.5)" % (wall, slowest, wall / slowest))
    print("   the same 40 checks one after another: %.2f s (%.1fx slower)%s" % (
        serial, serial / wall, ("; not ok: %s" % bad) if bad else ""))


def inventory(n):
    hosts = {}
    names = list(CFG["lab_hosts"])
    for i in range(n):
        real = names[i % len(names)]
        hosts["bench-%02d" % i] = {"mcp_host_address": CFG["lab_hosts"][real], "mcp_host_label": real,
                                   "mcp_config_dir": "{{ mcp_lab_dir }}/hosts/%s/etc/mcp" % real,
                                   "mcp_state_dir": "{{ mcp_lab_dir }}/hosts/%s/var/lib/mcp" % real}
    return {"all": {"children": {"controller": {"hosts": {"localhost": {}}}, "mcp_hosts": {"hosts": hosts}}}}


def run_daily_check(n, workdir):
    inv_dir = os.path.join(workdir, "inv-%d" % n)
    os.makedirs(inv_dir, exist_ok=True)
    with open(os.path.join(inv_dir, "hosts.yml"), "w") as f:
        yaml.safe_dump(inventory(n), f)
    # the lab's group_vars, verbatim, beside the generated hosts
    os.symlink(os.path.join(ROOT, "inventories", "lab", "group_vars"), os.path.join(inv_dir, "group_vars"))
    env = dict(os.environ, MCP_LAB_DIR=LAB, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"),
               ANSIBLE_PYTHON_INTERPRETER=os.path.join(VENV, "python"))
    argv = [os.path.join(VENV, "ansible-playbook"), "-i", inv_dir, os.path.join(ROOT, "playbooks", "daily_check.yml"),
            "-e", "daily_check_fail_on=never", "-e", "daily_check_report_dir=%s" % os.path.join(workdir, "rep-%d" % n),
            "-e", "mcp_lab_dir=%s" % LAB]
    t0 = time.monotonic()
    res = subprocess.run(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.monotonic() - t0
    if res.returncode != 0:
        print(res.stdout[-3000:])
        raise SystemExit("daily_check.yml over %d hosts failed" % n)
    with open(os.path.join(workdir, "rep-%d" % n, "latest.json")) as f:
        report = json.load(f)
    return wall, report


def bench_daily_check():
    with tempfile.TemporaryDirectory() as work:
        one, rep1 = run_daily_check(1, work)
        thirty, rep30 = run_daily_check(30, work)
    print("2. daily_check.yml: 1 host %.1f s; 30 hosts %.1f s; ratio %.2f (target <= 3); checks per run %d vs %d" % (
        one, thirty, thirty / one, sum(len(h["checks"]) for h in rep1["hosts"]),
        sum(len(h["checks"]) for h in rep30["hosts"])))


if __name__ == "__main__":
    print("mcp.platform bench/health.py (%s, %d cores)" % (time.strftime("%Y-%m-%d %H:%M"), os.cpu_count()))
    bench_checks()
    bench_daily_check()
