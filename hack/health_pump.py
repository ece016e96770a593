#!/usr/bin/env python3
"""Lab only: run the containers' HEALTHCHECKs, which Podman without systemd never runs.

Without this, Docker-style health stays `starting` forever and Traefik's Docker provider
ignores every container that has a HEALTHCHECK. We call libpod's healthcheck endpoint over
the API socket (no podman process per check) for every running managed container.
"""
import argparse
import http.client
import json
import os
import socket
import sys
import threading
import time

LAB = os.path.abspath(os.environ.get("MCP_LAB_DIR", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".lab")))


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, sock_path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.sock_path = sock_path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.sock_path)


def api(sock_path, path, method="GET", timeout=10):
    conn = UnixHTTPConnection(sock_path, timeout=timeout)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, (json.loads(body) if body else None)
    finally:
        conn.close()


def check(sock_path, cid):
    try:
        api(sock_path, "/v4.0.0/libpod/containers/%s/healthcheck" % cid, timeout=15)
    except (OSError, ValueError, http.client.HTTPException):
        pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--socket", default=os.path.join(LAB, "podman", "podman.sock"))
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--label", default="io.mcp-platform.managed=true")
    args = p.parse_args()
    filters = json.dumps({"label": [args.label], "status": ["running"]})
    from urllib.parse import quote
    while True:
        t0 = time.time()
        try:
            status, ctrs = api(args.socket, "/v4.0.0/libpod/containers/json?filters=" + quote(filters))
            threads = [threading.Thread(target=check, args=(args.socket, c["Id"])) for c in (ctrs or [])]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        except (OSError, ValueError, http.client.HTTPException) as e:
            print("health-pump: %s" % e, file=sys.stderr, flush=True)
        time.sleep(max(0.2, args.interval - (time.time() - t0)))


if __name__ == "__main__":
    main()
