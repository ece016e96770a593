#!/usr/bin/env python3
"""Issue 3 speed: concurrent checks and the daily check's scaling over hosts (prints, asserts nothing).

1. 40 checks, 10 of them HTTP endpoints that take 300 ms (the lab service's /slow route through the
   gateways of the three MCP hosts), run in this process on the controller with the installed collection's
   health runner: the wall time against the slowest single check, and against running the same checks one
   after another (what `mcp health` in a shell loop would do). The checks reach the real hosts: gateways,
   TLS and TCP on each MCP host, both PostgreSQL nodes (with the lab's passwords), Redis and the registry
   on the infrastructure address, and the replicas through two hosts' own engines (their sockets as the
   lab exposes them to the controller).
2. mcp.platform.daily_check over 30 generated inventory hosts against the same playbook over 1 host.
   The 30 hosts are aliases of the 3 real MCP hosts (10 each): ansible_host is the real address, the SSH
   variables are the lab's (group_vars copied from inventories/lab: managed_nodes/connection.yml, the
   platform contract of mcp_hosts/platform.yml) and mcp_host_label is the real host's name, so each alias's
   checks run on that host, against its engine, and find its replicas. Every alias gets a ControlPath of its
   own (ansible_control_path_dir): Ansible's default control socket is keyed by address, port and user, so
   the 10 aliases of a host would otherwise share one SSH connection, where 30 real hosts open 30. So this
   measures SSH fan-out for real: 30 connections, 30 module runs, on 3 machines (the lab's, on this box's CPUs).
Run: .venv/bin/python bench/health.py   (the lab up and the collection installed: make lab-up, make install)

Figures on the old one-machine lab (local connection, no SSH) were not recorded in this file or its history.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import tempfile
import time

import yaml
from benchlab import (
    CFG,
    HOSTS,
    INFRA,
    INVENTORY,
    LAB_DIR,
    MCP_HOSTS,
    PG_NODES,
    ROOT,
    ansible_env,
    engine_socket,
    gateway,
    import_installed,
    lab_up,
    pg_dsn,
    playbook_argv,
)

import_installed()
from ansible_collections.mcp.platform.plugins.module_utils.health.checks import validate_checks  # noqa: E402
from ansible_collections.mcp.platform.plugins.module_utils.health_runner import run_check, run_checks  # noqa: E402


def forty_checks():
    hosts = [HOSTS[h] for h in MCP_HOSTS]
    tls = CFG["lab_gateway_https_port"]
    checks = []
    for i in range(10):
        checks.append({"name": "slow-%d" % i, "type": "http", "url": "%s/mcp/filesystem/slow?ms=300" % gateway(MCP_HOSTS[i % 3])})
    for i in range(10):
        checks.append({"name": "health-%d" % i, "type": "http", "url": "%s/mcp/git/health" % gateway(MCP_HOSTS[i % 3])})
    for i in range(6):
        checks.append({"name": "mcp-%d" % i, "type": "mcp", "url": "%s/mcp/%s/mcp" % (gateway(MCP_HOSTS[i % 3]), CFG["lab_services"][i % 2])})
    for i in range(3):
        checks.append({"name": "tls-%d" % i, "type": "tls", "host": hosts[i], "port": tls})
    for i in range(3):
        checks.append({"name": "tcp-%d" % i, "type": "tcp", "host": hosts[i], "port": CFG["lab_gateway_http_port"]})
    checks += [
        {"name": "pg-%s" % PG_NODES[0], "type": "postgres", "dsn": pg_dsn(PG_NODES[0])},
        {"name": "pg-%s" % PG_NODES[1], "type": "postgres", "dsn": pg_dsn(PG_NODES[1])},
        {"name": "redis", "type": "redis", "url": "redis://%s:%d/0" % (INFRA, CFG["lab_redis_port"])},
        # each host's engine holds its own replicas: one service on the first host's engine, one on the second's
        {"name": "containers-fs", "type": "container", "docker_host": "unix://" + engine_socket(MCP_HOSTS[0]), "service": "filesystem"},
        {"name": "containers-git", "type": "container", "docker_host": "unix://" + engine_socket(MCP_HOSTS[1]), "service": "git"},
        {"name": "disk", "type": "disk", "path": "/"},
        {"name": "memory", "type": "memory"},
        {"name": "tcp-registry", "type": "tcp", "host": INFRA, "port": CFG["lab_registry_port"]},
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
    bad = ["%s (%s: %s)" % (r["name"], r["status"], r.get("reason", "")[:80]) for r in results if r["status"] != "ok"]
    print("1. 40 checks (10 x 300 ms HTTP) concurrently: %.2f s; slowest single check %.2f s; "
          "ratio %.2f (target <= 1.5)" % (wall, slowest, wall / slowest))
    print("   the same 40 checks one after another: %.2f s (%.1fx slower)%s" % (
        serial, serial / wall, ("; not ok: %s" % bad) if bad else ""))


def inventory(n, workdir):
    """n aliases of the real MCP hosts, round robin (30 -> 10 each), each with its own SSH control socket folder."""
    hosts = {}
    for i in range(n):
        real = MCP_HOSTS[i % len(MCP_HOSTS)]
        cp = os.path.join(workdir, "cp", "%02d" % i)
        os.makedirs(cp, mode=0o700, exist_ok=True)
        hosts["bench-%02d" % i] = {"ansible_host": HOSTS[real], "mcp_host_label": real, "ansible_control_path_dir": cp}
    return {"all": {"children": {"controller": {"hosts": {"localhost": {}}},
                                 "managed_nodes": {"children": {"mcp_hosts": {"hosts": hosts}}}}}}


def end_ssh_masters(workdir):
    """The ControlPersist masters this run left (one per alias): ended now rather than in 60 s."""
    for sock in glob.glob(os.path.join(workdir, "cp", "*", "*")):
        subprocess.run(["ssh", "-o", "ControlPath=%s" % sock, "-O", "exit", "bench"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)


def run_daily_check(n, workdir):
    inv_dir = os.path.join(workdir, "inv-%d" % n)
    os.makedirs(inv_dir, exist_ok=True)
    with open(os.path.join(inv_dir, "hosts.yml"), "w") as f:
        yaml.safe_dump(inventory(n, os.path.join(workdir, "ssh-%d" % n)), f)
    # the lab's group_vars (SSH connection, platform contract, lab addresses), copied beside the generated hosts
    shutil.copytree(os.path.join(INVENTORY, "group_vars"), os.path.join(inv_dir, "group_vars"))
    report_dir = os.path.join(workdir, "rep-%d" % n)
    argv = playbook_argv("daily_check", "-e", "daily_check_fail_on=never", "-e", "daily_check_report_dir=%s" % report_dir,
                         inventory=inv_dir)
    t0 = time.monotonic()
    try:
        res = subprocess.run(argv, env=ansible_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             check=False)
        wall = time.monotonic() - t0
    finally:
        end_ssh_masters(os.path.join(workdir, "ssh-%d" % n))
    if res.returncode != 0:
        print(res.stdout[-3000:])
        raise SystemExit("daily_check over %d hosts failed" % n)
    with open(os.path.join(report_dir, "latest.json")) as f:
        report = json.load(f)
    return wall, report


def summary(report):
    counts = {}
    for h in report["hosts"]:
        counts[h["status"]] = counts.get(h["status"], 0) + 1
    return ", ".join("%d %s" % (v, k) for k, v in sorted(counts.items()))


def not_ok(report):
    """Non-ok checks by name and reason (their number of hosts), so a red figure says why."""
    seen = {}
    for h in report["hosts"]:
        for c in h["checks"]:
            if c["status"] != "ok":
                key = "%s %s: %s" % (c["status"], c["name"], " ".join(str(c.get("reason", "")).split())[:120])
                seen[key] = seen.get(key, 0) + 1
    return ["%s (%d hosts)" % kv for kv in sorted(seen.items(), key=lambda kv: -kv[1])]


def bench_daily_check(hosts):
    # under /tmp, not the lab folder: the control sockets' paths must stay under the 108-byte limit of a unix socket
    with tempfile.TemporaryDirectory(prefix="mcp-bench-health-") as work:
        one, rep1 = run_daily_check(1, work)
        many, repn = run_daily_check(hosts, work)
    print("2. daily_check over SSH: 1 host %.1f s; %d hosts (aliases of %d real ones) %.1f s; ratio %.2f (target <= 3); "
          "checks per run %d vs %d; host status %s vs %s" % (
              one, hosts, len(MCP_HOSTS), many, many / one, sum(len(h["checks"]) for h in rep1["hosts"]),
              sum(len(h["checks"]) for h in repn["hosts"]), summary(rep1), summary(repn)))
    for name, rep in (("1 host", rep1), ("%d hosts" % hosts, repn)):
        for line in not_ok(rep)[:8]:
            print("   %s, not ok: %s" % (name, line))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=30, help="inventory hosts for the daily check's scaling run (default 30)")
    ap.add_argument("--skip-checks", action="store_true", help="run the daily check part only")
    args = ap.parse_args()
    lab_up()
    print("mcp.platform bench/health.py (%s, %d cores, lab %s)" % (time.strftime("%Y-%m-%d %H:%M"), os.cpu_count(), LAB_DIR))
    if not args.skip_checks:
        bench_checks()
    bench_daily_check(args.hosts)


if __name__ == "__main__":
    main()
