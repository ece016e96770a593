"""Constant HTTP load through the lab's gateways, counting every failed request.

Used by the rollout tests and by ``bench/update.py``: while an update, rollback or restart runs,
each target URL (``http://<gateway>:8080/mcp/<service>/version`` from ``gateway_urls``) receives real
HTTP GETs at a fixed rate, and every answer that is not 200 (or a connection error, a timeout) is
counted as a failure with its cause and time.

``/version`` rather than ``/health``: a replica being drained answers ``/health`` with 503 on purpose
(that is how the gateway's health check learns to stop routing to it) while it still serves every
real request, so GETs of ``/health`` through the gateway would count the drain signal as failures.

Bounded: loopback and private addresses only (the lab's hosts are on a private bridge, 10.231.0.0/24), at most
``MAX_RATE`` requests per second per URL, at most ``MAX_DURATION`` seconds, a fixed number of worker threads.

    python tests/integration/loadgen.py --duration 20 --rate 60 \
        http://10.231.0.11:8080/mcp/filesystem/version http://10.231.0.11:8080/mcp/git/version
"""
from __future__ import annotations

import argparse
import collections
import http.client
import ipaddress
import json
import signal
import socket
import sys
import threading
import time
from urllib.parse import urlsplit

MAX_RATE = 500          # requests per second per URL
MAX_DURATION = 900      # seconds
MAX_WORKERS_PER_URL = 8


def _allowed(host: str) -> bool:
    """A loopback or private (non-global) address: never a host on the internet."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    return addr.is_loopback or (addr.is_private and not addr.is_global and not addr.is_link_local and not addr.is_multicast)


class LoadGen:
    """Send ``rate`` GETs per second to each URL from worker threads until stopped (or ``max_duration``)."""

    def __init__(self, urls, rate=60.0, max_duration=600.0, workers_per_url=4, timeout=5.0):
        if not urls:
            raise ValueError("no URL to load")
        if not 0 < rate <= MAX_RATE:
            raise ValueError("rate must be in (0, %d] requests/s per URL" % MAX_RATE)
        if not 0 < max_duration <= MAX_DURATION:
            raise ValueError("max_duration must be in (0, %d] s" % MAX_DURATION)
        self.targets = []
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme != "http" or not parts.hostname or not _allowed(parts.hostname):
                raise ValueError("only http:// URLs on loopback or private addresses are allowed, got %r" % url)
            path = parts.path + ("?" + parts.query if parts.query else "")
            self.targets.append((url, parts.hostname, parts.port or 80, path or "/"))
        self.rate = float(rate)
        self.max_duration = float(max_duration)
        self.workers_per_url = max(1, min(int(workers_per_url), MAX_WORKERS_PER_URL))
        self.timeout = timeout
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = []
        self.ok = collections.Counter()
        self.failed = collections.Counter()
        self.failures = []          # (s since start, url, cause, UTC wall clock), first 200 kept
        self.causes = collections.Counter()   # every failure by cause ("HTTP 503", "ConnectionResetError: ...")
        self.started = None
        self.stopped = None

    # ------------------------------------------------------------------ workers
    def _worker(self, target, index):
        url, host, port, path = target
        interval = self.workers_per_url / self.rate
        next_at = self.started + interval * index / self.workers_per_url
        conn = None
        deadline = self.started + self.max_duration
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= deadline:
                break
            if next_at > now:
                if self._stop.wait(next_at - now):
                    break
            next_at += interval
            if next_at < time.monotonic() - 1.0:    # never burst to catch up after a stall
                next_at = time.monotonic()
            cause = None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
                conn.request("GET", path, headers={"Connection": "keep-alive", "User-Agent": "mcp-loadgen"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    cause = "HTTP %d" % resp.status
                if resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException, socket.timeout) as exc:
                cause = "%s: %s" % (type(exc).__name__, exc)
                if conn is not None:
                    conn.close()
                conn = None
            with self._lock:
                if cause is None:
                    self.ok[url] += 1
                else:
                    self.failed[url] += 1
                    self.causes[cause.split(":")[0]] += 1
                    if len(self.failures) < 200:
                        self.failures.append((round(time.monotonic() - self.started, 2), url, cause,
                                              time.strftime("%H:%M:%S", time.gmtime()) + ".%02d" % (time.time() % 1 * 100)))
        if conn is not None:
            conn.close()

    # ------------------------------------------------------------------ control
    def start(self):
        self.started = time.monotonic()
        for target in self.targets:
            for i in range(self.workers_per_url):
                t = threading.Thread(target=self._worker, args=(target, i), daemon=True)
                t.start()
                self._threads.append(t)
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 2)
        self.stopped = time.monotonic()
        return self.stats()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def stats(self):
        with self._lock:
            elapsed = ((self.stopped or time.monotonic()) - self.started) if self.started else 0.0
            total_ok, total_failed = sum(self.ok.values()), sum(self.failed.values())
            per_url = {u: {"ok": self.ok[u], "failed": self.failed[u],
                           "rate": round((self.ok[u] + self.failed[u]) / elapsed, 1) if elapsed else 0.0}
                       for u, _h, _p, _path in self.targets}
            return {"elapsed_s": round(elapsed, 2), "ok": total_ok, "failed": total_failed,
                    "requests": total_ok + total_failed, "per_url": per_url, "failures": list(self.failures[:50]),
                    "causes": dict(self.causes)}


def gateway_urls(addresses, services, port=8080, path="version"):
    """Every ``http://<address>:<port>/mcp/<service>/<path>``."""
    return ["http://%s:%d/mcp/%s/%s" % (a, port, s, path) for a in addresses for s in services]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("urls", nargs="+")
    p.add_argument("--rate", type=float, default=60.0, help="requests per second per URL")
    p.add_argument("--duration", type=float, default=10.0, help="seconds")
    p.add_argument("--workers", type=int, default=4, help="threads per URL")
    args = p.parse_args(argv)
    gen = LoadGen(args.urls, rate=args.rate, max_duration=args.duration, workers_per_url=args.workers).start()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait(args.duration)
    print(json.dumps(gen.stop(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
