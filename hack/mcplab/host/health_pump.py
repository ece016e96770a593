#!/usr/bin/env python3
"""Lab only: run the containers' HEALTHCHECKs, which Podman without systemd never runs.

Without this, Docker-style health stays `starting` forever and Traefik's Docker provider ignores
every container that has a HEALTHCHECK. Running every HEALTHCHECK every second costs a podman exec
each (hundreds of ms of CPU on two cores), so the pump watches cheaply and runs the real check when
it matters: each tick it reads every managed container's state over the API socket and GETs its
published /health directly; it runs the container's own HEALTHCHECK (libpod's healthcheck endpoint)
when that direct answer disagrees with the recorded health, when the container is still `starting`,
and at least every --full-interval seconds. The recorded status therefore only ever comes from the
image's own HEALTHCHECK.
"""
import argparse
import http.client
import json
import os
import socket
import sys
import threading
import time
import urllib.request
from urllib.parse import quote

LAB = os.path.abspath(os.environ.get("MCP_LAB_DIR", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".lab")))


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, sock_path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.sock_path = sock_path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.sock_path)


def api(sock_path, path, timeout=10):
    conn = UnixHTTPConnection(sock_path, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, (json.loads(body) if body else None)
    finally:
        conn.close()


def direct_health(inspect):
    """True/False from GET /health on the published port; None when the container publishes none."""
    ports = ((inspect.get("NetworkSettings") or {}).get("Ports") or {}).get("8080/tcp") or []
    if not ports:
        return None
    host = ports[0].get("HostIp") or "127.0.0.1"
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    path = (inspect.get("Config", {}).get("Labels") or {}).get("io.mcp-platform.health-path", "/health")
    try:
        with urllib.request.urlopen("http://%s:%s%s" % (host, ports[0]["HostPort"], path), timeout=1) as r:
            return r.status == 200
    except Exception:  # any failure to answer 200 counts as unhealthy
        return False


class Pump:
    def __init__(self, sock_path, full_interval):
        self.sock = sock_path
        self.full_interval = full_interval
        self.last_full = {}

    def visit(self, cid):
        try:
            status, inspect = api(self.sock, "/v4.0.0/libpod/containers/%s/json" % cid)
            if status != 200 or not inspect:
                return
            health = ((inspect.get("State") or {}).get("Health") or {}).get("Status") or ""
            if not health:
                return  # no HEALTHCHECK in this image
            direct = direct_health(inspect)
            now = time.time()
            due = now - self.last_full.get(cid, 0) >= self.full_interval
            disagree = direct is not None and ((health == "healthy") != direct)
            if due or disagree or health == "starting" or direct is None:
                self.last_full[cid] = now
                api(self.sock, "/v4.0.0/libpod/containers/%s/healthcheck" % cid, timeout=15)
        except (OSError, ValueError, http.client.HTTPException):
            pass

    def tick(self, filters):
        status, ctrs = api(self.sock, "/v4.0.0/libpod/containers/json?filters=" + quote(filters))
        ids = [c["Id"] for c in (ctrs or [])]
        threads = [threading.Thread(target=self.visit, args=(cid,)) for cid in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for gone in set(self.last_full) - set(ids):
            del self.last_full[gone]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--socket", default=os.path.join(LAB, "podman", "podman.sock"))
    p.add_argument("--interval", type=float, default=0.5, help="seconds between cheap looks")
    p.add_argument("--full-interval", type=float, default=10.0, help="run every HEALTHCHECK at least this often")
    p.add_argument("--label", default="io.mcp-platform.managed=true")
    args = p.parse_args()
    filters = json.dumps({"label": [args.label], "status": ["running"]})
    pump = Pump(args.socket, args.full_interval)
    while True:
        t0 = time.time()
        try:
            pump.tick(filters)
        except (OSError, ValueError, http.client.HTTPException) as e:
            print("health-pump: %s" % e, file=sys.stderr, flush=True)
        time.sleep(max(0.1, args.interval - (time.time() - t0)))


if __name__ == "__main__":
    main()
