#!/usr/bin/env python3
"""Rolling update: the manual's update-platform.sh vs playbooks/update.yml, under the same load.

    .venv/bin/python bench/update.py [--sleep 30] [--watch 5] [--rate 30]

A (manual): bench/manual/update-platform.sh on each host in turn, 1.0.0 -> 1.1.0: N new replicas next to the
old ones, sleep, old ones removed abruptly (compose scale x2 / sleep / scale back).
B (collection): playbooks/update.yml -e version=1.0.0 (1.1.0 -> 1.0.0: the same images the other way, which
also leaves the lab where it was): start-first, health-gated, drained, watched.
Both run while tests/integration/loadgen.py sends GETs through every gateway. Printed side by side: failed
requests and wall time of each, and the target 1.2 x (replicas x (container start + time to healthy)) + watch.
Asserts nothing. Needs the lab up and on 1.0.0.
"""
import argparse
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from loadgen import LoadGen, gateway_urls  # noqa: E402

LAB_DIR = os.path.abspath(os.environ.get("MCP_LAB_DIR", os.path.join(ROOT, ".lab")))
BIN = os.path.join(ROOT, ".venv", "bin")


def env():
    return dict(os.environ, MCP_LAB_DIR=LAB_DIR, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"),
                ANSIBLE_PYTHON_INTERPRETER=os.path.join(BIN, "python"), ANSIBLE_FORCE_COLOR="0",
                CONTAINERS_CONF=os.path.join(LAB_DIR, "podman", "containers.conf"),
                CONTAINERS_REGISTRIES_CONF=os.path.join(LAB_DIR, "podman", "registries.conf"))


def start_to_healthy(cfg, version, samples=2):
    """Mean seconds from ``docker run`` to healthy for one replica of ``version``.

    Measured on throwaway containers labelled for no gateway (host label ``bench``, so no Traefik routes to them),
    while nothing else of the benchmark runs.
    """
    import docker
    client = docker.DockerClient(base_url="unix://" + os.path.join(LAB_DIR, "podman", "podman.sock"), timeout=60)
    image = "127.0.0.1:%d/mcp-platform/%s:%s" % (cfg["lab_registry_port"], cfg["lab_services"][0], version)
    out = []
    try:
        for i in range(samples):
            name = "bench-start-to-healthy-%d" % i
            try:
                client.containers.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass
            t0 = time.monotonic()
            c = client.containers.run(image, name=name, detach=True, environment={"MCP_SERVICE": cfg["lab_services"][0]},
                                      labels={"io.mcp-platform.managed": "true", "io.mcp-platform.host": "bench",
                                              "io.mcp-platform.lab": "true", "io.mcp-platform.service": "bench"})
            try:
                while time.monotonic() - t0 < 120:
                    c.reload()
                    if (c.attrs.get("State", {}).get("Health") or {}).get("Status") == "healthy":
                        out.append(time.monotonic() - t0)
                        break
                    time.sleep(0.2)
            finally:
                c.remove(force=True)
    finally:
        client.close()
    return sum(out) / len(out) if out else None


def settle(urls, clean_for=3.0, limit=60.0):
    """Seconds until every URL has answered 200 for `clean_for` seconds in a row (at most `limit`)."""
    t0 = time.monotonic()
    clean_since = None
    while time.monotonic() - t0 < limit:
        ok = True
        for url in urls:
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    ok = ok and resp.status == 200
            except (urllib.error.URLError, OSError):
                ok = False
        now = time.monotonic()
        clean_since = (clean_since or now) if ok else None
        if clean_since is not None and now - clean_since >= clean_for:
            break
        time.sleep(0.1)
    return time.monotonic() - t0


def run_loaded(cfg, argv, rate):
    """Run one method under load; the load goes on until the gateways are clean again, so requests a method
    breaks right at its end (the manual's last scale-down) count against it, not against the next one."""
    urls = gateway_urls(cfg["lab_hosts"].values(), cfg["lab_services"], cfg["lab_gateway_http_port"])
    gen = LoadGen(urls, rate=rate, max_duration=900, workers_per_url=3).start()
    t0 = time.monotonic()
    res = subprocess.run(argv, cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.monotonic() - t0
    settle(urls)
    stats = gen.stop()
    return res, wall, stats


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sleep", type=int, default=30, help="update-platform.sh's sleep between scale up and down (manual: 30)")
    p.add_argument("--watch", type=int, default=5, help="update.yml post-cutover watch per host, seconds")
    p.add_argument("--rate", type=float, default=30.0, help="GETs per second per gateway URL (2 services per gateway)")
    args = p.parse_args()
    with open(os.path.join(ROOT, "inventories/lab/group_vars/all/lab.yml")) as f:
        cfg = yaml.safe_load(f)
    new, old = "1.1.0", cfg["lab_initial_version"]

    manual = os.path.join(ROOT, "bench", "manual", "update-platform.sh")
    script = ["bash", "-c", " && ".join("%s %s %s %s %d" % (manual, new, h, a, args.sleep) for h, a in cfg["lab_hosts"].items())]
    healthy_s = start_to_healthy(cfg, new)
    res_a, wall_a, stats_a = run_loaded(cfg, script, args.rate)
    if res_a.returncode != 0:
        print(res_a.stdout[-3000:])

    playbook = [os.path.join(BIN, "ansible-playbook"), "-i", os.path.join(ROOT, "inventories", "lab"),
                os.path.join(ROOT, "playbooks", "update.yml"), "-e", "version=%s" % old, "-e", "watch=%d" % args.watch,
                "-e", "update_confirm_staging_tested=true", "-e", "update_confirm_maintenance_window=true",
                "-e", "update_confirm_users_notified=true", "-e", "update_backup=false"]
    res_b, wall_b, stats_b = run_loaded(cfg, playbook, args.rate)
    if res_b.returncode != 0:
        print(res_b.stdout[-3000:])

    replicas = len(cfg["lab_hosts"]) * len(cfg["lab_services"]) * 2
    per_replica = healthy_s if healthy_s is not None else float("nan")
    target = 1.2 * (replicas * per_replica) + args.watch * len(cfg["lab_hosts"])
    print()
    print("rolling update under load (%d GET/s per gateway, %d gateways, %d replicas)"
          % (args.rate * len(cfg["lab_services"]), len(cfg["lab_hosts"]), replicas))
    print("%-44s %14s %14s %10s %8s" % ("method", "failed/total", "failed %", "wall s", "rc"))
    for name, res, wall, st in (("manual update-platform.sh (sleep %ds) %s->%s" % (args.sleep, old, new), res_a, wall_a, stats_a),
                                ("playbooks/update.yml (watch %ds) %s->%s" % (args.watch, new, old), res_b, wall_b, stats_b)):
        pct = 100.0 * st["failed"] / st["requests"] if st["requests"] else 0.0
        print("%-44s %14s %13.2f%% %10.1f %8d" % (name, "%d/%d" % (st["failed"], st["requests"]), pct, wall, res.returncode))
    print("container start + time to healthy (one replica, mean of 2, measured before the runs): %.1f s" % per_replica)
    print("target: 1.2 x (%d replicas x %.1f s) + watch %d s x %d hosts = %.1f s; update.yml took %.1f s (%.2fx the target)"
          % (replicas, per_replica, args.watch, len(cfg["lab_hosts"]), target, wall_b, wall_b / target if target == target else float("nan")))
    for name, st in (("manual", stats_a), ("update.yml", stats_b)):
        if st["failures"]:
            print("%s failures (first 5): %s" % (name, st["failures"][:5]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
