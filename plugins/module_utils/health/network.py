# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The network probes: http, mcp (a Streamable HTTP handshake), tcp and tls (certificate expiry).

They need nothing beyond the standard library (cryptography, when installed, decodes certificates), and they
share the one-line wording of network failures (``net_reason``) that the datastore probes reuse.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import re
import socket
import ssl
import tempfile
from http.client import HTTPException
from urllib.error import HTTPError, URLError
from urllib.request import HTTPSHandler, Request, build_opener

from ansible_collections.mcp.platform.plugins.module_utils.health.checks import lib, result
from ansible_collections.mcp.platform.plugins.module_utils.mcp_client import MCPError, StreamableHTTPClient

MAX_BODY = 1024 * 1024


def ssl_context(validate_certs):
    """A client TLS context; ``validate_certs`` false skips both chain and host name checks."""
    ctx = ssl.create_default_context()
    if not validate_certs:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def net_reason(exc, timeout):
    """A network failure in a few words (timed out, connection refused, cannot resolve host, TLS error ...)."""
    if isinstance(exc, URLError) and not isinstance(exc, HTTPError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, socket.timeout) or "timed out" in str(exc):
        return "timed out after %gs" % timeout
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "cannot resolve host (%s)" % (exc.strerror or exc)
    if isinstance(exc, ssl.SSLError):
        return "TLS error: %s" % (getattr(exc, "verify_message", None) or exc.reason or exc)
    return str(getattr(exc, "strerror", None) or exc)


def probe_http(check):
    url = check["url"]
    opener = build_opener(HTTPSHandler(context=ssl_context(check["validate_certs"])))
    req = Request(url, headers=dict({"User-Agent": "mcp.platform.mcp_health"}, **check["headers"]))
    limit = MAX_BODY if check["body_regex"] else 65536
    try:
        try:
            resp = opener.open(req, timeout=check["timeout"])
        except HTTPError as exc:
            resp = exc
        with resp:
            code = resp.getcode()
            body = resp.read(limit) or b""
            ctype = resp.headers.get("Content-Type") if resp.headers else None
    except (URLError, socket.timeout, OSError, ValueError, HTTPException) as exc:
        # HTTPException: a body cut off mid-way (IncompleteRead) or a garbled status line
        return result("crit", "GET %s: %s" % (url, net_reason(exc, check["timeout"])), url=url)
    details = {"url": url, "status_code": code, "content_type": ctype, "bytes": len(body)}
    if code not in check["status_code"]:
        expected = "/".join(str(c) for c in check["status_code"])
        return result("crit", "HTTP %s (expected %s)" % (code, expected), **details)
    if check["body_regex"]:
        text = body.decode("utf-8", "replace")
        details["body_matched"] = bool(re.search(check["body_regex"], text))
        if not details["body_matched"]:
            return result("crit", "HTTP %s but body does not match %r" % (code, check["body_regex"]), **details)
    return result("ok", "HTTP %s" % code, **details)


def probe_mcp(check):
    client = StreamableHTTPClient(check["url"], timeout=check["timeout"], headers=check["headers"],
                                  validate_certs=check["validate_certs"], protocol_version=check["protocol_version"])
    details = {"url": check["url"], "requested_protocol_version": check["protocol_version"]}
    try:
        init = client.initialize()
        info = init.get("serverInfo") or {}
        caps = init.get("capabilities") or {}
        details.update({
            "protocol_version": init.get("protocolVersion"),
            "server_name": info.get("name"),
            "server_version": info.get("version"),
            "session": client.session_id is not None,
            "capabilities": sorted(caps) if isinstance(caps, dict) else [],
        })
        details["initialized_status"] = client.initialized()
        if isinstance(caps, dict) and "tools" in caps:
            tools = client.list_tools()
            details["tool_count"] = len(tools)
            details["tools"] = [t.get("name") for t in tools[:100] if isinstance(t, dict)]
        else:
            details["tool_count"] = 0
            details["tools"] = []
    except MCPError as exc:
        return result("crit", "MCP handshake failed at %s" % (exc,), **details)
    finally:
        if check["delete_session"]:
            details["session_closed_status"] = client.close()
    problems = []
    if check["expect_server_name"] is not None and details["server_name"] != check["expect_server_name"]:
        problems.append("server name %r != expected %r" % (details["server_name"], check["expect_server_name"]))
    if check["expect_version"] is not None and details["server_version"] != check["expect_version"]:
        problems.append("server version %r != expected %r" % (details["server_version"], check["expect_version"]))
    if check["min_tools"] is not None and details["tool_count"] < check["min_tools"]:
        problems.append("%d tools < min_tools %d" % (details["tool_count"], check["min_tools"]))
    summary = "MCP %s %s (protocol %s), %d tools" % (details["server_name"], details["server_version"],
                                                     details["protocol_version"], details["tool_count"])
    if problems:
        return result("crit", "%s: %s" % (summary, "; ".join(problems)), **details)
    return result("ok", summary, **details)


def probe_tcp(check):
    target = "%s:%s" % (check["host"], check["port"])
    try:
        sock = socket.create_connection((check["host"], check["port"]), timeout=check["timeout"])
        peer = sock.getpeername()
        sock.close()
    except (OSError, socket.timeout) as exc:
        return result("crit", "%s: %s" % (target, net_reason(exc, check["timeout"])),
                      host=check["host"], port=check["port"])
    return result("ok", "%s accepts connections" % target, host=check["host"], port=check["port"], address=str(peer[0]))


def _cert_info_stdlib(der):
    """Decode a DER certificate without third-party libraries (via a temporary PEM file)."""
    pem = ssl.DER_cert_to_PEM_cert(der)
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(pem)
        decoded = ssl._ssl._test_decode_cert(path)  # pylint: disable=protected-access
    finally:
        os.unlink(path)

    def name(rdns):
        return ",".join("%s=%s" % (k, v) for rdn in rdns or () for (k, v) in rdn)
    not_after = datetime.datetime.fromtimestamp(ssl.cert_time_to_seconds(decoded["notAfter"]), tz=datetime.timezone.utc)
    sans = [v for (_k, v) in decoded.get("subjectAltName", ())]
    return not_after, name(decoded.get("subject")), name(decoded.get("issuer")), sans


def _cert_info(der):
    x509 = lib("cryptography.x509")
    if x509 is None:
        return _cert_info_stdlib(der)
    cert = x509.load_der_x509_certificate(der)
    not_after = getattr(cert, "not_valid_after_utc", None)
    if not_after is None:  # cryptography < 42
        not_after = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        sans = [str(v) for v in ext.value.get_values_for_type(x509.DNSName)]
        sans += [str(v) for v in ext.value.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        sans = []
    return not_after, cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), sans


def probe_tls(check):
    host, port = check["host"], check["port"]
    sni = check["server_name"] or host
    target = "%s:%s" % (host, port)
    base = {"host": host, "port": port, "server_name": sni}
    ctx = ssl_context(False)
    try:
        with socket.create_connection((host, port), timeout=check["timeout"]) as sock:
            with ctx.wrap_socket(sock, server_hostname=sni) as tls:
                der = tls.getpeercert(binary_form=True)
                base["tls_version"] = tls.version()
                base["cipher"] = (tls.cipher() or [None])[0]
    except (OSError, socket.timeout, ssl.SSLError) as exc:
        return result("crit", "%s: %s" % (target, net_reason(exc, check["timeout"])), **base)
    if not der:
        return result("crit", "%s presented no certificate" % target, **base)
    try:
        not_after, subject, issuer, sans = _cert_info(der)
    except Exception as exc:  # pylint: disable=broad-except
        return result("unknown", "%s: cannot decode certificate: %s" % (target, exc), **base)
    now = datetime.datetime.now(datetime.timezone.utc)
    days_left = round((not_after - now).total_seconds() / 86400.0, 2)
    base.update({"not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"), "days_left": days_left,
                 "subject": subject, "issuer": issuer, "subject_alt_names": sans})
    if check["validate_certs"]:
        try:
            with socket.create_connection((host, port), timeout=check["timeout"]) as sock:
                with ssl.create_default_context().wrap_socket(sock, server_hostname=sni):
                    base["verified"] = True
        except (OSError, ssl.SSLError) as exc:
            base["verified"] = False
            return result("crit", "%s: certificate does not verify: %s" % (
                target, net_reason(exc, check["timeout"])), **base)
    if days_left < 0:
        return result("crit", "%s: certificate expired %s (%.1f days ago)" % (
            target, base["not_after"], -days_left), **base)
    text = "%s: certificate expires %s (%.1f days left)" % (target, base["not_after"], days_left)
    if days_left <= check["crit_days"]:
        return result("crit", "%s <= crit_days %g" % (text, check["crit_days"]), **base)
    if days_left <= check["warn_days"]:
        return result("warn", "%s <= warn_days %g" % (text, check["warn_days"]), **base)
    return result("ok", text, **base)
