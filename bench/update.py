#!/usr/bin/env python3
"""Rolling update: the manual's update-platform.sh vs mcp.platform.update, under the same load, on the lab of real hosts.

    .venv/bin/python bench/update.py [--sleep 30] [--watch 5] [--rate 30]

A (manual): bench/manual/update-platform.sh on each MCP host in turn, 1.0.0 -> 1.1.0, run ON the host as root, the
way the manual's procedure runs it (an operator's ``ssh <host> sudo ./update-platform.sh``: here the script's text is
sent over SSH as the lab's SSH user with sudo, with the lab's key and known_hosts): N new replicas next to the old ones
on the host's own engine (Podman's CLI standing in for docker compose), sleep, old ones removed abruptly (compose
scale x2 / sleep / scale back).
B (collection): mcp.platform.update -e version=1.0.0 from the installed collection over SSH (1.1.0 -> 1.0.0: the
same images the other way, which also leaves the lab where it was): start-first, health-gated, drained, watched.
Both run while tests/integration/loadgen.py sends GETs through every MCP host's gateway. Printed side by side:
failed requests and wall time of each, and the target 1.2 x (replicas x (container start + time to healthy)) + watch.
Start-to-healthy is measured on throwaway containers on the first MCP host's engine (its socket as the lab exposes
it to the controller; the host's health pump runs the HEALTHCHECK). Asserts nothing. Needs the lab up and on 1.0.0;
if update.yml fails, the bench runs it again to put the lab back on 1.0.0 and says so.

Old lab (one machine, one engine), from the git log (ac9e2a0): after the load was kept on until the gateways were
clean, the manual's trailing 502s stopped being charged to update.yml, which had shown 4/14616 failed requests.
"""
import argparse
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from benchlab import CFG, HOSTS, MCP_HOSTS, REGISTRY, ROOT, SSH, ansible_env, engine_socket, host_path, lab_up, playbook_argv

sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from loadgen import LoadGen, gateway_urls  # noqa: E402  pylint: disable=wrong-import-position

MANUAL = os.path.join(ROOT, "bench", "manual", "update-platform.sh")


def start_to_healthy(version, samples=2):
    """Mean seconds from ``docker run`` to healthy for one replica of ``version``, on the first MCP host's engine.

    Measured on throwaway containers labelled for no gateway (host label ``bench``, no traefik labels, so no
    Traefik routes to them), while nothing else of the benchmark runs.
    """
    import docker
    client = docker.DockerClient(base_url="unix://" + engine_socket(MCP_HOSTS[0]), timeout=60)
    image = "%s/mcp-platform/%s:%s" % (REGISTRY, CFG["lab_services"][0], version)
    out = []
    try:
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            client.images.pull(image)  # the pull is not part of start-to-healthy
        for i in range(samples):
            name = "bench-start-to-healthy-%d" % i
            try:
                client.containers.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass
            t0 = time.monotonic()
            c = client.containers.run(image, name=name, detach=True, environment={"MCP_SERVICE": CFG["lab_services"][0]},
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


def versions():
    """{host: VERSION of its /etc/mcp/platform.env} (read through the lab's bind mount)."""
    out = {}
    for host in MCP_HOSTS:
        with open(host_path(host, "/etc/mcp/platform.env")) as f:
            out[host] = [line.split("=", 1)[1].strip() for line in f if line.startswith("VERSION=")][0]
    return out


def running_versions():
    """{host: sorted versions of its running platform containers} (through its own engine)."""
    import docker
    out = {}
    for host in MCP_HOSTS:
        client = docker.DockerClient(base_url="unix://" + engine_socket(host), timeout=30)
        try:
            found = client.containers.list(filters={"label": ["io.mcp-platform.managed=true", "io.mcp-platform.host=%s" % host]})
            out[host] = sorted({c.labels.get("io.mcp-platform.version") for c in found})
        finally:
            client.close()
    return out


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


def run_loaded(method, rate):
    """Run one method (a callable returning (rc, output)) under load; the load goes on until the gateways are clean
    again, so requests a method breaks right at its end (the manual's last scale-down) count against it, not
    against the next one."""
    urls = gateway_urls([HOSTS[h] for h in MCP_HOSTS], CFG["lab_services"], CFG["lab_gateway_http_port"])
    gen = LoadGen(urls, rate=rate, max_duration=900, workers_per_url=3).start()
    t0 = time.monotonic()
    try:
        rc, out = method()
        wall = time.monotonic() - t0
        settle(urls)
    finally:
        stats = gen.stop()
    return rc, out, wall, stats


def manual_update(ssh, version, sleep):
    """update-platform.sh on each host in turn, on the host, as root (sudo over SSH), stopping at the first failure."""
    with open(MANUAL) as f:
        script = f.read()
    out = []
    for host in MCP_HOSTS:
        # the script's text as `bash -c` (not on stdin, where a command of it could read the rest of the script)
        remote = ["env", "MCP_REGISTRY=" + REGISTRY, "MCP_SERVICES=" + " ".join(CFG["lab_services"]),
                  "bash", "-c", script, "update-platform.sh", version, host, HOSTS[host], str(sleep)]
        res = ssh.run(host, remote, check=False, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out.append("%s: %s" % (host, res.stdout.decode("utf-8", "replace")))
        if res.returncode != 0:
            return res.returncode, "\n".join(out)
    return 0, "\n".join(out)


def playbook_update(version, watch):
    argv = playbook_argv("update", "-e", "version=%s" % version, "-e", "watch=%d" % watch,
                         "-e", "update_confirm_staging_tested=true", "-e", "update_confirm_maintenance_window=true",
                         "-e", "update_confirm_users_notified=true", "-e", "update_backup=false")
    res = subprocess.run(argv, cwd=ROOT, env=ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    return res.returncode, res.stdout


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sleep", type=int, default=30, help="update-platform.sh's sleep between scale up and down (manual: 30)")
    p.add_argument("--watch", type=int, default=5, help="update.yml post-cutover watch per host, seconds")
    p.add_argument("--rate", type=float, default=30.0, help="GETs per second per gateway URL (2 services per gateway)")
    args = p.parse_args()
    lab_up()
    new, old = "1.1.0", CFG["lab_initial_version"]
    if set(versions().values()) != {old} or any(v != [old] for v in running_versions().values()):
        raise SystemExit("the lab is not on %s (platform.env %s, running %s)" % (old, versions(), running_versions()))

    healthy_s = start_to_healthy(new)
    ssh = SSH()
    try:
        rc_a, out_a, wall_a, stats_a = run_loaded(lambda: manual_update(ssh, new, args.sleep), args.rate)
    finally:
        ssh.close()
    if rc_a != 0:
        print(out_a[-3000:])
    rc_b, out_b, wall_b, stats_b = run_loaded(lambda: playbook_update(old, args.watch), args.rate)
    if rc_b != 0:
        print(out_b[-3000:])

    replicas = len(MCP_HOSTS) * len(CFG["lab_services"]) * 2
    per_replica = healthy_s if healthy_s is not None else float("nan")
    target = 1.2 * (replicas * per_replica) + args.watch * len(MCP_HOSTS)
    print()
    print("rolling update under load (%d GET/s per gateway, %d gateways, %d replicas)"
          % (args.rate * len(CFG["lab_services"]), len(MCP_HOSTS), replicas))
    print("%-44s %14s %14s %10s %8s" % ("method", "failed/total", "failed %", "wall s", "rc"))
    for name, rc, wall, st in (("manual update-platform.sh (sleep %ds) %s->%s" % (args.sleep, old, new), rc_a, wall_a, stats_a),
                               ("mcp.platform.update (watch %ds) %s->%s" % (args.watch, new, old), rc_b, wall_b, stats_b)):
        pct = 100.0 * st["failed"] / st["requests"] if st["requests"] else 0.0
        print("%-44s %14s %13.2f%% %10.1f %8d" % (name, "%d/%d" % (st["failed"], st["requests"]), pct, wall, rc))
    print("container start + time to healthy (one replica, mean of 2, measured before the runs): %.1f s" % per_replica)
    print("target: 1.2 x (%d replicas x %.1f s) + watch %d s x %d hosts = %.1f s; update.yml took %.1f s (%.2fx the target)"
          % (replicas, per_replica, args.watch, len(MCP_HOSTS), target, wall_b, wall_b / target if target == target else float("nan")))
    for name, st in (("manual", stats_a), ("update.yml", stats_b)):
        if st["failures"]:
            print("%s failures (first 5): %s" % (name, st["failures"][:5]))

    # leave the lab on the version it had
    if set(versions().values()) != {old} or any(v != [old] for v in running_versions().values()):
        print("the lab is not back on %s (platform.env %s, running %s): running mcp.platform.update -e version=%s again"
              % (old, versions(), running_versions(), old))
        rc, out = playbook_update(old, args.watch)
        if rc != 0:
            print(out[-3000:])
            return 1
    print("lab after the runs: platform.env %s, running %s" % (versions(), running_versions()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
