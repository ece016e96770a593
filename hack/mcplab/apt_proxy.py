#!/usr/bin/env python3
"""Lab only: the HTTP proxy the lab hosts' apt uses (they reach nothing beyond the bridge).

apt sends absolute-URI requests (`GET http://deb.debian.org/debian/pool/...`); this forwards them from the
controller's network to the Debian mirror and keeps a copy of every package file (`.deb`: a name never
changes content), so five hosts installing the same client download it once. Index files are passed through.
Only the Debian mirror hosts are allowed. Standard library only.

    apt_proxy.py --listen 10.231.0.2:23142 --cache DIR
"""
import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ALLOWED = {"deb.debian.org", "security.debian.org"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    cache = None

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.command, fmt % args))

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.scheme != "http" or url.hostname not in ALLOWED:
            return self.fail(403, "only http://%s is proxied" % " and http://".join(sorted(ALLOWED)))
        cached = None
        if url.path.endswith(".deb"):
            cached = os.path.join(self.cache, hashlib.sha256(self.path.encode()).hexdigest() + ".deb")
            if os.path.exists(cached):
                return self.send_file(cached)
        try:
            upstream = urllib.request.urlopen(urllib.request.Request(self.path, headers={"User-Agent": "mcp-lab-apt-proxy"}),
                                              timeout=60)
        except urllib.error.HTTPError as exc:
            return self.fail(exc.code, str(exc.reason))
        except OSError as exc:
            return self.fail(502, "upstream: %s" % exc)
        with upstream:
            if cached:
                fd, tmp = tempfile.mkstemp(dir=self.cache)
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(upstream, out, 1 << 20)
                os.replace(tmp, cached)
                return self.send_file(cached)
            body = upstream.read()
        self.send_response(200)
        self.send_header("Content-Type", upstream.headers.get("Content-Type", "application/octet-stream"))
        if upstream.headers.get("Last-Modified"):
            self.send_header("Last-Modified", upstream.headers["Last-Modified"])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_file(self, name):
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.debian.binary-package")
        self.send_header("Content-Length", str(os.path.getsize(name)))
        self.end_headers()
        with open(name, "rb") as f:
            shutil.copyfileobj(f, self.wfile, 1 << 20)

    def fail(self, code, msg):
        body = (msg + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--cache", required=True)
    args = p.parse_args()
    host, port = args.listen.rsplit(":", 1)
    os.makedirs(args.cache, exist_ok=True)
    Handler.cache = args.cache
    ThreadingHTTPServer((host, int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
