# -*- coding: utf-8 -*-
"""Local servers the health probe tests aim at: a plain HTTP server and an HTTPS one with a self-signed certificate."""
from __future__ import absolute_import, division, print_function

import datetime
import random
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def free_port():
    for _attempt in range(200):
        port = random.randint(31000, 31999)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 31000-31999")


@pytest.fixture(name="free_port", scope="session")
def free_port_fixture():
    """``free_port`` itself: a test calls it for a port nothing listens on."""
    return free_port


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        code, body = 200, b'{"status": "ok", "version": "1.4.2"}'
        if self.path.startswith("/slow"):
            time.sleep(0.3)
        elif self.path == "/down":
            code, body = 503, b"maintenance"
        elif self.path == "/headers":
            body = ("token=%s" % self.headers.get("X-Token")).encode()
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


def _serve(server):
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def http_url():
    server = _serve(ThreadingHTTPServer(("127.0.0.1", free_port()), Handler))
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()


def _self_signed(tmp_path, days):
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
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture(scope="module")
def tls_port(tmp_path_factory):
    """An HTTPS server with a self-signed certificate that expires in 5 days."""
    cert, key = _self_signed(tmp_path_factory.mktemp("tls"), days=5)
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    _serve(server)
    yield server.server_address[1]
    server.shutdown()
