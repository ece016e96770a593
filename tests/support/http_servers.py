# -*- coding: utf-8 -*-
"""Local HTTP servers the probes aim at (started by the fixtures in tests/component/conftest.py): a plain HTTP/HTTPS
server with a few behaviours, and a hand-written MCP endpoint for protocol corner cases and breakage.

In-process, threaded, bound to 127.0.0.1 port 0 (the kernel picks the port: no free_port race).
"""
from __future__ import absolute_import, division, print_function

import datetime
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HealthHandler(BaseHTTPRequestHandler):
    """``/health`` (and any other path): 200 with a JSON status; ``/slow...``: after 0.3 s, counting requests in flight;
    ``/down``: 503; ``/flip``: 503 until ``flip_at`` (monotonic), then 200; ``/headers``: echoes X-Token; ``/cut``: a
    chunked body cut off. ``hits`` counts requests per path. The class attributes are shared by every server."""

    hits = {}
    flip_at = 0.0
    lock = threading.Lock()
    inflight = 0
    max_inflight = 0
    metrics_ok = 1000
    metrics_5xx = 0

    def log_message(self, *args):
        pass

    def do_GET(self):
        cls = HealthHandler
        cls.hits[self.path] = cls.hits.get(self.path, 0) + 1
        code, body = 200, b'{"status": "ok", "version": "1.4.2"}'
        if self.path.startswith("/slow"):
            with cls.lock:
                cls.inflight += 1
                cls.max_inflight = max(cls.max_inflight, cls.inflight)
            time.sleep(0.3)
            with cls.lock:
                cls.inflight -= 1
        elif self.path == "/down":
            code, body = 503, b"maintenance"
        elif self.path == "/flip":
            code = 200 if time.monotonic() >= cls.flip_at else 503
        elif self.path == "/headers":
            body = ("token=%s" % self.headers.get("X-Token")).encode()
        elif self.path == "/metrics":  # Traefik's answer counters (Prometheus text), errors set by the test
            body = ('traefik_service_requests_total{code="200",method="GET",protocol="http",service="git@docker"} %d\n'
                    'traefik_service_requests_total{code="503",method="GET",protocol="http",service="git@docker"} %d\n'
                    % (cls.metrics_ok, cls.metrics_5xx)).encode()
        elif self.path == "/cut":  # a chunk of 32 bytes promised, 10 sent, hang up (a proxy losing its upstream)
            self.protocol_version = "HTTP/1.1"
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b'20\r\n{"status":')
            self.close_connection = True
            return
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:  # the client gave up (timeout tests)
            pass


class MCPHandler(BaseHTTPRequestHandler):
    """A hand-written MCP endpoint: ``/tricky`` speaks the protocol in awkward but valid ways (SSE with a comment, a
    server notification first, multi-line data, a session, pagination); the other paths break in one way each."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, code, ctype, body, extra=None):
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send(200, "application/json", '{"status":"ok"}')

    def do_DELETE(self):
        self._send(405, "text/plain", "no")

    def do_POST(self):
        msg = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        path = self.path
        if "id" not in msg:  # notification
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/html":
            return self._send(200, "text/html", "<html>gateway error</html>")
        if path == "/500":
            return self._send(500, "text/plain", "upstream crashed")
        if path == "/rpcerror":
            error = {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32600, "message": "bad"}}
            return self._send(200, "application/json", json.dumps(error))
        if path == "/sse-empty":
            return self._send(200, "text/event-stream", ": nothing\n\n")
        if path == "/cut":  # headers of a chunked stream, then the connection drops (a proxy losing its upstream)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"20\r\nevent: message\r\n")
            self.wfile.flush()
            self.close_connection = True
            return None
        if path == "/hang":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(b": keepalive\n\n")
            self.wfile.flush()
            time.sleep(3)
            return None
        # /tricky: an SSE stream with a comment, a server notification first, multi-line data and a session
        if msg["method"] == "initialize":
            assert self.headers["Accept"] == "application/json, text/event-stream"
            result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "tricky", "version": "0.1"}}
        else:
            assert self.headers["mcp-session-id"] == "abc", "session id not sent back"
            assert self.headers["mcp-protocol-version"] == "2025-06-18"
            cursor = (msg.get("params") or {}).get("cursor")
            result = {"tools": [{"name": "t2"}]} if cursor else {"tools": [{"name": "t1"}], "nextCursor": "p2"}
        body = json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}, indent=1)
        sse = ": hello\n\nevent: message\ndata: %s\n\n" % json.dumps({"jsonrpc": "2.0", "method": "notifications/message", "params": {}})
        sse += "event: message\n" + "".join("data: %s\n" % line for line in body.splitlines()) + "\n"
        return self._send(200, "text/event-stream; charset=utf-8", sse, {"mcp-session-id": "abc"})


def serve(handler, ssl_context=None):
    """A threaded server for ``handler`` on 127.0.0.1 (a kernel-picked port), serving in a daemon thread; with
    ``ssl_context``, HTTPS. ``server.server_address[1]`` is the port; ``server.shutdown()`` stops it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def self_signed(folder, days):
    """A self-signed EC certificate for mcp-gateway.test and 127.0.0.1, valid for ``days``: (cert path, key path)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(u"mcp-gateway.test"), x509.IPAddress(ipaddress.ip_address(u"127.0.0.1"))]
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u"mcp-gateway.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)
