# -*- coding: utf-8 -*-
"""health.network: the http, tcp and tls probes against local servers (``http_url``, ``tls_port``;
tests/component/conftest.py); mcp is in test_health_mcp_client."""
from __future__ import absolute_import, division, print_function

import socket
import ssl

import pytest
from support.health import run
from support.ports import free_port

from ansible_collections.mcp.platform.plugins.module_utils.health import network


def test_http_ok_status_body_headers(http_url):
    res = run({"name": "h", "type": "http", "url": http_url + "/health", "body_regex": r'"status":\s*"ok"'})
    assert res["status"] == "ok" and res["details"]["status_code"] == 200 and res["details"]["body_matched"] is True
    res = run({"name": "h", "type": "http", "url": http_url + "/health", "body_regex": "degraded"})
    assert res["status"] == "crit" and "body does not match" in res["reason"]
    res = run({"name": "h", "type": "http", "url": http_url + "/headers", "headers": {"X-Token": "abc"}, "body_regex": "token=abc"})
    assert res["status"] == "ok"


def test_http_status_codes(http_url):
    res = run({"name": "h", "type": "http", "url": http_url + "/down"})
    assert res["status"] == "crit" and res["reason"] == "HTTP 503 (expected 200)"
    res = run({"name": "h", "type": "http", "url": http_url + "/down", "status_code": [200, 503], "body_regex": "maint"})
    assert res["status"] == "ok"


def test_http_body_cut_off_is_crit_not_a_crash(http_url):
    res = run({"name": "h", "type": "http", "url": http_url + "/cut", "body_regex": "ok"})
    assert res["status"] == "crit" and "IncompleteRead" in res["reason"], res


def test_http_timeout_and_refused(http_url):
    res = run({"name": "h", "type": "http", "url": http_url + "/slow", "timeout": 0.1})
    assert res["status"] == "crit" and "timed out after 0.1s" in res["reason"]
    res = run({"name": "h", "type": "http", "url": "http://127.0.0.1:%d/" % free_port()})
    assert res["status"] == "crit" and "connection refused" in res["reason"].lower()


def test_https_validate_certs(tls_port):
    url = "https://127.0.0.1:%d/health" % tls_port
    assert run({"name": "h", "type": "http", "url": url, "validate_certs": False})["status"] == "ok"
    res = run({"name": "h", "type": "http", "url": url})
    assert res["status"] == "crit" and "TLS error: self-signed certificate" in res["reason"]


@pytest.mark.parametrize("warn,crit,status", [(30, 7, "crit"), (30, 3, "warn"), (4, 3, "ok")])
def test_tls_expiry_thresholds(tls_port, warn, crit, status):
    check = {"name": "t", "type": "tls", "host": "127.0.0.1", "port": tls_port, "server_name": "mcp-gateway.test"}
    if warn != 30 or crit != 7:
        check.update(warn_days=warn, crit_days=crit)
    res = run(check)
    assert res["status"] == status, res
    d = res["details"]
    assert 4.9 < d["days_left"] <= 5.0
    assert d["subject"] == "CN=mcp-gateway.test" and "mcp-gateway.test" in d["subject_alt_names"]
    assert d["tls_version"].startswith("TLS")


def test_tls_validate_certs_self_signed_is_crit(tls_port):
    res = run({"name": "t", "type": "tls", "host": "127.0.0.1", "port": tls_port, "validate_certs": True, "crit_days": 1, "warn_days": 2})
    assert res["status"] == "crit" and res["details"]["verified"] is False and "does not verify" in res["reason"]


def test_tls_stdlib_fallback_matches_cryptography(tls_port):
    with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as sock:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with ctx.wrap_socket(sock) as tls:
            der = tls.getpeercert(binary_form=True)
    via_lib = network._cert_info(der)
    via_stdlib = network._cert_info_stdlib(der)
    assert abs((via_lib[0] - via_stdlib[0]).total_seconds()) < 1
    assert "mcp-gateway.test" in via_stdlib[1] and "mcp-gateway.test" in via_stdlib[3]


def test_tls_on_plain_port_is_crit(http_url):
    port = int(http_url.rsplit(":", 1)[1])
    res = run({"name": "t", "type": "tls", "host": "127.0.0.1", "port": port, "timeout": 2})
    assert res["status"] == "crit" and "TLS error" in res["reason"]


def test_tcp(http_url):
    port = int(http_url.rsplit(":", 1)[1])
    assert run({"name": "t", "type": "tcp", "host": "127.0.0.1", "port": port})["status"] == "ok"
    res = run({"name": "t", "type": "tcp", "host": "127.0.0.1", "port": free_port()})
    assert res["status"] == "crit" and res["reason"].endswith("connection refused")
    res = run({"name": "t", "type": "tcp", "host": "no-such-host.invalid", "port": 80})
    assert res["status"] == "crit" and "cannot resolve host" in res["reason"]
