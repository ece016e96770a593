# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health probes for mcp_health: check validation, one probe function per check type, secret masking.

Every probe takes a *validated* check dict (see ``validate_check``) and returns
``{"status": "ok|warn|crit|unknown", "reason": "<one line>", "details": {...}}``.
Probes never raise for an unhealthy target; the runner turns unexpected
exceptions into ``unknown``.  Optional libraries (psycopg2/psycopg, pymongo,
docker, cryptography) are imported lazily-guarded here; a missing one makes the
affected check ``unknown`` with a reason that names it, its pip package and the
role that installs it (``node_requirements``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import importlib
import math
import os
import re
import socket
import ssl
import tempfile
import threading
import time
from http.client import HTTPException
from urllib.error import HTTPError, URLError
from urllib.parse import unquote, urlsplit
from urllib.request import HTTPSHandler, Request, build_opener

from ansible_collections.mcp.platform.plugins.module_utils.container_logs import LogsError, recent_problems
from ansible_collections.mcp.platform.plugins.module_utils.mcp_client import (
    DEFAULT_PROTOCOL_VERSION,
    MCPError,
    StreamableHTTPClient,
)
from ansible_collections.mcp.platform.plugins.module_utils.node_requirements import not_installed_reason

# Optional client libraries are imported on first use (see ``lib``): a run of disk/http checks should not
# pay for importing docker, pymongo, psycopg and cryptography on every managed node.
_LIBS = {}


def lib(name):
    """The imported module ``name`` or None when it is not installed (cached)."""
    if name not in _LIBS:
        try:
            _LIBS[name] = importlib.import_module(name)
        except ImportError:
            _LIBS[name] = None
    return _LIBS[name]


def _docker_missing():
    return not_installed_reason("docker", "the docker Python SDK (pip package docker) is not installed")


STATUSES = ("ok", "warn", "crit", "unknown")
CHECK_TYPES = ("http", "mcp", "tcp", "tls", "postgres", "redis", "mongodb", "container", "logs", "disk", "memory")
MASK = "********"
MAX_BODY = 1024 * 1024
SERVICE_LABEL = "io.mcp-platform.service"
HOST_LABEL = "io.mcp-platform.host"

# ---------------------------------------------------------------------------------------------
# secret masking
# ---------------------------------------------------------------------------------------------
_URL_PASSWORD = re.compile(r"(?P<pre>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*:)(?P<pw>[^/?#\s]*)(?P<post>@)")
_QUERY_PASSWORD = re.compile(r"(?P<pre>[?&](?:password|pass|pwd)=)(?P<pw>[^&#\s]*)", re.I)
_KV_PASSWORD = re.compile(r"(?P<pre>(?:^|(?<=\s))password\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.I)
_SENSITIVE_HEADER = re.compile(r"authorization|cookie|token|secret|api[-_]?key|password", re.I)


def mask_text(text, secrets=()):
    """Return ``text`` with DSN/URL passwords and every string in ``secrets`` replaced by ``********``."""
    if not isinstance(text, str) or not text:
        return text
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: m.group("pre") + (MASK if m.group("pw") else "") + m.group("post"), text)
    text = _QUERY_PASSWORD.sub(lambda m: m.group("pre") + MASK, text)
    return _KV_PASSWORD.sub(lambda m: m.group("pre") + MASK, text)


def mask_value(value, secrets=()):
    """``mask_text`` applied recursively to the strings in dicts/lists."""
    if isinstance(value, str):
        return mask_text(value, secrets)
    if isinstance(value, dict):
        return dict((k, mask_value(v, secrets)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [mask_value(v, secrets) for v in value]
    return value


def dsn_secrets(text):
    """Passwords embedded in a DSN/URI/URL (raw and percent-decoded forms)."""
    found = set()
    if not text:
        return found
    for rx in (_URL_PASSWORD, _QUERY_PASSWORD, _KV_PASSWORD):
        for m in rx.finditer(text):
            pw = m.group("pw")
            if pw.startswith("'") and pw.endswith("'") and len(pw) >= 2:
                found.add(pw[1:-1])
            found.add(pw)
            found.add(unquote(pw))
    return set(s for s in found if s)


def check_secrets(check):
    """Every secret string a (validated or raw) check carries: passwords, DSN passwords, sensitive headers."""
    secrets = set()
    if check.get("password"):
        secrets.add(check["password"])
    for key in ("dsn", "uri", "url", "docker_host"):
        if isinstance(check.get(key), str):
            secrets |= dsn_secrets(check[key])
    for hname, hval in (check.get("headers") or {}).items():
        if _SENSITIVE_HEADER.search(str(hname)) and hval:
            secrets.add(str(hval))
    return secrets


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------
class CheckValidationError(ValueError):
    """Bad check definition; ``option`` is the option path, e.g. ``checks[2].url``."""

    def __init__(self, option, message):
        super(CheckValidationError, self).__init__("%s: %s" % (option, message))
        self.option = option


REQUIRED = object()
DOCKER_API_VERSION = "1.41"

FIELD_KINDS = {
    "name": "str", "type": "str", "timeout": "float",
    "url": "str", "status_code": "intlist", "body_regex": "str", "headers": "dict", "validate_certs": "bool",
    "protocol_version": "str", "expect_server_name": "str", "expect_version": "str", "min_tools": "int",
    "delete_session": "bool",
    "host": "str", "port": "int", "server_name": "str", "warn_days": "float", "crit_days": "float",
    "dsn": "str", "password": "str", "username": "str", "expect_role": "str", "max_lag_seconds": "float",
    "max_lag_bytes": "int", "uri": "str",
    "docker_host": "str", "service": "str", "platform_host": "str", "labels": "dict", "min_replicas": "int",
    "max_restarts": "int", "probe_path": "str", "probe_port": "int",
    "since": "int", "warn_errors": "int", "crit_errors": "int", "last": "int",
    "path": "str", "warn_percent": "float", "crit_percent": "float",
}

TYPE_FIELDS = {
    "http": {"url": REQUIRED, "status_code": [200], "body_regex": None, "headers": {}, "validate_certs": True},
    "mcp": {"url": REQUIRED, "headers": {}, "validate_certs": True, "protocol_version": DEFAULT_PROTOCOL_VERSION,
            "expect_server_name": None, "expect_version": None, "min_tools": None, "delete_session": True},
    "tcp": {"host": REQUIRED, "port": REQUIRED},
    "tls": {"host": REQUIRED, "port": 443, "server_name": None, "warn_days": 30.0, "crit_days": 7.0,
            "validate_certs": False},
    "postgres": {"dsn": REQUIRED, "password": None, "expect_role": None, "max_lag_seconds": None, "max_lag_bytes": None},
    "redis": {"url": REQUIRED, "username": None, "password": None, "validate_certs": True},
    "mongodb": {"uri": REQUIRED},
    "container": {"service": REQUIRED, "docker_host": None, "platform_host": None, "labels": {}, "min_replicas": 1,
                  "max_restarts": None, "probe_path": None, "probe_port": 8080},
    "logs": {"docker_host": None, "service": None, "platform_host": None, "labels": {}, "since": 86400,
             "warn_errors": 1, "crit_errors": 100, "last": 20},
    "disk": {"path": REQUIRED, "warn_percent": 80.0, "crit_percent": 90.0},
    "memory": {"warn_percent": 75.0, "crit_percent": 85.0},
}
SECRET_FIELDS = ("dsn", "uri", "password")
ROLES = ("primary", "replica")


def check_suboptions():
    """The AnsibleModule suboption spec of ``checks`` (the union of all types' keys; no defaults, see TYPE_FIELDS)."""
    kinds = {"str": {"type": "str"}, "float": {"type": "float"}, "int": {"type": "int"}, "bool": {"type": "bool"},
             "dict": {"type": "dict"}, "intlist": {"type": "list", "elements": "int"}}
    spec = dict((key, dict(kinds[kind])) for key, kind in FIELD_KINDS.items())
    spec["name"]["required"] = True
    spec["type"].update(required=True, choices=list(CHECK_TYPES))
    spec["path"]["type"] = "path"
    spec["expect_role"]["choices"] = list(ROLES)
    for key in SECRET_FIELDS:
        spec[key]["no_log"] = True
    # every header value stays out of the module's invocation log (syslog/journal), which is written
    # before the module runs; the module then un-hides the values of headers whose names are not secret
    spec["headers"]["no_log"] = True
    return spec


def public_header_values(check):
    """Values of a check's headers whose names do not look secret (safe to show in reports)."""
    return set(str(v) for k, v in (check.get("headers") or {}).items()
               if v is not None and str(v) and not _SENSITIVE_HEADER.search(str(k)))


def _coerce(path, kind, value):
    if kind == "str":
        if isinstance(value, (dict, list, bool)):
            raise CheckValidationError(path, "must be a string")
        value = str(value)
        if not value.strip():
            raise CheckValidationError(path, "must not be empty")
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("yes", "true", "on", "1", "y"):
            return True
        if text in ("no", "false", "off", "0", "n"):
            return False
        raise CheckValidationError(path, "must be a boolean")
    if kind in ("int", "float"):
        if isinstance(value, bool):
            raise CheckValidationError(path, "must be a number")
        try:
            num = float(value)
        except (TypeError, ValueError):
            raise CheckValidationError(path, "must be a number, got %r" % (value,))
        if math.isnan(num) or math.isinf(num):
            raise CheckValidationError(path, "must be a finite number")
        if kind == "int":
            if num != int(num):
                raise CheckValidationError(path, "must be an integer, got %r" % (value,))
            return int(num)
        return num
    if kind == "intlist":
        items = value if isinstance(value, (list, tuple)) else [value]
        if not items:
            raise CheckValidationError(path, "must not be empty")
        return [_coerce("%s[%d]" % (path, i), "int", v) for i, v in enumerate(items)]
    if kind == "dict":
        if not isinstance(value, dict):
            raise CheckValidationError(path, "must be a dictionary")
        return dict((str(k), str(v)) for k, v in value.items())
    raise CheckValidationError(path, "unsupported kind %s" % kind)  # pragma: no cover


def _check_url(path, url, schemes):
    try:
        parts = urlsplit(url)
        parts.port  # pylint: disable=pointless-statement  # raises ValueError on a bad port
    except ValueError as exc:
        raise CheckValidationError(path, "malformed URL (%s)" % exc)
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise CheckValidationError(path, "must be a %s URL with a host, got %r" % (
            " or ".join("%s://" % s for s in schemes), mask_text(url)))


def _check_range(path, value, low, high):
    if value is not None and not low <= value <= high:
        raise CheckValidationError(path, "must be between %s and %s, got %s" % (low, high, value))


def validate_check(check, index=None, default_timeout=5.0):
    """Validate one check definition and return it normalized (per-type defaults filled in).

    Keys whose value is ``None`` count as unset (AnsibleModule fills every suboption).
    Raises CheckValidationError naming the option path (``checks[<index>].<key>``).
    """
    prefix = "checks" if index is None else "checks[%d]" % index
    if not isinstance(check, dict):
        raise CheckValidationError(prefix, "must be a dictionary")
    given = dict((k, v) for k, v in check.items() if v is not None)
    for key in ("name", "type"):
        if key not in given:
            raise CheckValidationError("%s.%s" % (prefix, key), "is required")
    ctype = str(given["type"]).strip().lower()
    if ctype not in TYPE_FIELDS:
        raise CheckValidationError("%s.type" % prefix, "unknown check type %r; expected one of %s" % (
            given["type"], ", ".join(CHECK_TYPES)))
    fields = TYPE_FIELDS[ctype]
    out = {"name": _coerce("%s.name" % prefix, "str", given["name"]), "type": ctype}
    for key in sorted(given):
        if key in ("name", "type"):
            continue
        opt = "%s.%s" % (prefix, key)
        if key not in fields and key != "timeout":
            if key in FIELD_KINDS:
                raise CheckValidationError(opt, "is not valid for a check of type %s (valid: %s)" % (
                    ctype, ", ".join(sorted(list(fields) + ["timeout"]))))
            raise CheckValidationError(opt, "unknown option")
        out[key] = _coerce(opt, FIELD_KINDS[key], given[key])
    for key, default in fields.items():
        if key not in out:
            if default is REQUIRED:
                raise CheckValidationError("%s.%s" % (prefix, key), "is required for a check of type %s" % ctype)
            out[key] = list(default) if isinstance(default, list) else (dict(default) if isinstance(default, dict) else default)
    out.setdefault("timeout", float(default_timeout))
    _check_range("%s.timeout" % prefix, out["timeout"], 0.001, 3600)

    def opt(key):
        return "%s.%s" % (prefix, key)

    if ctype in ("http", "mcp"):
        _check_url(opt("url"), out["url"], ("http", "https"))
    if ctype == "http":
        for i, code in enumerate(out["status_code"]):
            _check_range("%s[%d]" % (opt("status_code"), i), code, 100, 599)
        if out["body_regex"] is not None:
            try:
                re.compile(out["body_regex"])
            except re.error as exc:
                raise CheckValidationError(opt("body_regex"), "invalid regular expression: %s" % exc)
    if ctype == "mcp" and out["min_tools"] is not None:
        _check_range(opt("min_tools"), out["min_tools"], 0, 1000000)
    if ctype in ("tcp", "tls"):
        _check_range(opt("port"), out["port"], 1, 65535)
    if ctype == "tls":
        _check_range(opt("crit_days"), out["crit_days"], 0, 36500)
        _check_range(opt("warn_days"), out["warn_days"], 0, 36500)
        if out["warn_days"] < out["crit_days"]:
            raise CheckValidationError(opt("warn_days"), "must be >= crit_days (%s), got %s" % (out["crit_days"], out["warn_days"]))
    if ctype == "postgres":
        dsn = out["dsn"]
        if "://" in dsn:
            if urlsplit(dsn).scheme.lower() not in ("postgresql", "postgres"):
                raise CheckValidationError(opt("dsn"), "must be a postgresql:// URI or a key=value connection string")
            try:
                urlsplit(dsn).port  # pylint: disable=expression-not-assigned
            except ValueError as exc:
                raise CheckValidationError(opt("dsn"), "malformed URI (%s)" % exc)
        elif "=" not in dsn:
            raise CheckValidationError(opt("dsn"), "must be a postgresql:// URI or a key=value connection string")
        if out["expect_role"] is not None:
            out["expect_role"] = out["expect_role"].lower()
            if out["expect_role"] not in ROLES:
                raise CheckValidationError(opt("expect_role"), "must be one of %s" % ", ".join(ROLES))
        _check_range(opt("max_lag_seconds"), out["max_lag_seconds"], 0, 10 ** 9)
        _check_range(opt("max_lag_bytes"), out["max_lag_bytes"], 0, 2 ** 62)
    if ctype == "redis":
        _check_url(opt("url"), out["url"], ("redis", "rediss"))
    if ctype == "mongodb":
        scheme = out["uri"].split("://", 1)[0].lower() if "://" in out["uri"] else ""
        if scheme not in ("mongodb", "mongodb+srv"):
            raise CheckValidationError(opt("uri"), "must be a mongodb:// or mongodb+srv:// URI")
    if ctype == "container":
        _check_range(opt("min_replicas"), out["min_replicas"], 0, 10000)
        _check_range(opt("max_restarts"), out["max_restarts"], 0, 10 ** 9)
        if out["docker_host"] is not None and not re.match(r"^(unix|tcp|http|https|ssh|npipe)://", out["docker_host"]):
            raise CheckValidationError(opt("docker_host"), "must be a unix://, tcp://, http(s):// or ssh:// address")
    if ctype == "container":
        _check_range(opt("probe_port"), out["probe_port"], 1, 65535)
        if out["probe_path"] is not None and not out["probe_path"].startswith("/"):
            raise CheckValidationError(opt("probe_path"), "must start with /, got %r" % out["probe_path"])
    if ctype == "logs":
        _check_range(opt("since"), out["since"], 1, 10 ** 8)
        _check_range(opt("warn_errors"), out["warn_errors"], 0, 10 ** 9)
        _check_range(opt("crit_errors"), out["crit_errors"], 0, 10 ** 9)
        _check_range(opt("last"), out["last"], 0, 10000)
        if out["warn_errors"] > out["crit_errors"]:
            raise CheckValidationError(opt("warn_errors"), "must be <= crit_errors (%s), got %s" % (out["crit_errors"], out["warn_errors"]))
        if out["docker_host"] is not None and not re.match(r"^(unix|tcp|http|https|ssh|npipe)://", out["docker_host"]):
            raise CheckValidationError(opt("docker_host"), "must be a unix://, tcp://, http(s):// or ssh:// address")
    if ctype in ("disk", "memory"):
        _check_range(opt("warn_percent"), out["warn_percent"], 0, 100)
        _check_range(opt("crit_percent"), out["crit_percent"], 0, 100)
        if out["warn_percent"] > out["crit_percent"]:
            raise CheckValidationError(opt("warn_percent"), "must be <= crit_percent (%s), got %s" % (out["crit_percent"], out["warn_percent"]))
    return out


def validate_checks(checks, default_timeout=5.0):
    """Validate a list of checks (unique names) and return the normalized list."""
    if not isinstance(checks, (list, tuple)):
        raise CheckValidationError("checks", "must be a list of check dictionaries")
    out = []
    seen = {}
    for idx, check in enumerate(checks):
        norm = validate_check(check, idx, default_timeout)
        if norm["name"] in seen:
            raise CheckValidationError("checks[%d].name" % idx, "duplicate check name %r (also checks[%d])" % (norm["name"], seen[norm["name"]]))
        seen[norm["name"]] = idx
        out.append(norm)
    return out


# ---------------------------------------------------------------------------------------------
# probe helpers
# ---------------------------------------------------------------------------------------------
def result(status, reason, **details):
    return {"status": status, "reason": reason, "details": details}


def _ssl_context(validate_certs):
    ctx = ssl.create_default_context()
    if not validate_certs:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _net_reason(exc, timeout):
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


# ---------------------------------------------------------------------------------------------
# probes
# ---------------------------------------------------------------------------------------------
def probe_http(check):
    url = check["url"]
    opener = build_opener(HTTPSHandler(context=_ssl_context(check["validate_certs"])))
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
        return result("crit", "GET %s: %s" % (url, _net_reason(exc, check["timeout"])), url=url)
    details = {"url": url, "status_code": code, "content_type": ctype, "bytes": len(body)}
    if code not in check["status_code"]:
        return result("crit", "HTTP %s (expected %s)" % (code, "/".join(str(c) for c in check["status_code"])), **details)
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
        return result("crit", "%s: %s" % (target, _net_reason(exc, check["timeout"])), host=check["host"], port=check["port"])
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
    ctx = _ssl_context(False)
    try:
        with socket.create_connection((host, port), timeout=check["timeout"]) as sock:
            with ctx.wrap_socket(sock, server_hostname=sni) as tls:
                der = tls.getpeercert(binary_form=True)
                base["tls_version"] = tls.version()
                base["cipher"] = (tls.cipher() or [None])[0]
    except (OSError, socket.timeout, ssl.SSLError) as exc:
        return result("crit", "%s: %s" % (target, _net_reason(exc, check["timeout"])), **base)
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
            return result("crit", "%s: certificate does not verify: %s" % (target, _net_reason(exc, check["timeout"])), **base)
    if days_left < 0:
        return result("crit", "%s: certificate expired %s (%.1f days ago)" % (target, base["not_after"], -days_left), **base)
    text = "%s: certificate expires %s (%.1f days left)" % (target, base["not_after"], days_left)
    if days_left <= check["crit_days"]:
        return result("crit", "%s <= crit_days %g" % (text, check["crit_days"]), **base)
    if days_left <= check["warn_days"]:
        return result("warn", "%s <= warn_days %g" % (text, check["warn_days"]), **base)
    return result("ok", text, **base)


def _pg_target(dsn):
    """A password-free one-line description of a DSN: user@host:port/db."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        try:
            port = parts.port
        except ValueError:
            port = None
        return "%s@%s:%s/%s" % (parts.username or "", parts.hostname or "", port or 5432, parts.path.lstrip("/"))
    kv = dict((m.group(1).lower(), m.group(2).strip("'")) for m in re.finditer(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", dsn))
    return "%s@%s:%s/%s" % (kv.get("user", ""), kv.get("host", ""), kv.get("port", 5432), kv.get("dbname", ""))


_PG_REPLICA_SQL = """
SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint,
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END::float8,
       (SELECT status FROM pg_stat_wal_receiver LIMIT 1)
"""
_PG_PRIMARY_SQL = """
SELECT application_name, client_addr::text, state, sync_state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint,
       EXTRACT(EPOCH FROM replay_lag)::float8
FROM pg_stat_replication ORDER BY application_name
"""


def _pg_connect(check, psycopg2, psycopg):
    kwargs = {"connect_timeout": max(1, int(math.ceil(check["timeout"])))}
    if check["password"]:
        kwargs["password"] = check["password"]
    if psycopg2 is not None:
        conn = psycopg2.connect(check["dsn"], **kwargs)
        conn.autocommit = True
        return conn
    return psycopg.connect(check["dsn"], autocommit=True, **kwargs)


def probe_postgres(check):
    target = _pg_target(check["dsn"])
    details = {"dsn": mask_text(check["dsn"], check_secrets(check)), "target": target}
    psycopg2, psycopg = lib("psycopg2"), None
    if psycopg2 is None:
        psycopg = lib("psycopg")
    if psycopg2 is None and psycopg is None:
        missing = not_installed_reason("psycopg2", "neither psycopg2 nor psycopg is installed")
        return result("unknown", "postgres %s: %s" % (target, missing), **details)
    errors = tuple(e for e in (getattr(psycopg2, "Error", None), getattr(psycopg, "Error", None)) if e)
    try:
        conn = _pg_connect(check, psycopg2, psycopg)
    except Exception as exc:  # pylint: disable=broad-except
        if not isinstance(exc, errors):
            raise
        msg = " ".join(str(exc).split())
        return result("crit", "postgres %s: cannot connect: %s" % (target, msg), **details)
    try:
        cur = conn.cursor()
        cur.execute("SET statement_timeout = %d" % max(1, int(check["timeout"] * 1000)))
        cur.execute("SELECT 1")
        cur.fetchone()
        cur.execute("SELECT pg_is_in_recovery(), current_setting('server_version')")
        in_recovery, version = cur.fetchone()
        details.update({"role": "replica" if in_recovery else "primary", "server_version": version})
        lag_s = lag_b = None
        if in_recovery:
            cur.execute(_PG_REPLICA_SQL)
            recv, replay, lag_b, lag_s, receiver = cur.fetchone()
            details.update({"receive_lsn": recv, "replay_lsn": replay, "lag_bytes": lag_b,
                            "lag_seconds": None if lag_s is None else round(lag_s, 3), "wal_receiver_status": receiver})
        else:
            cur.execute(_PG_PRIMARY_SQL)
            reps = [{"application_name": r[0], "client_addr": r[1], "state": r[2], "sync_state": r[3],
                     "lag_bytes": r[4], "lag_seconds": None if r[5] is None else round(r[5], 3)} for r in cur.fetchall()]
            details["replicas"] = reps
            lag_b = max([r["lag_bytes"] for r in reps if r["lag_bytes"] is not None] or [None]) if reps else None
            lag_s = max([r["lag_seconds"] for r in reps if r["lag_seconds"] is not None] or [None]) if reps else None
        cur.close()
    except Exception as exc:  # pylint: disable=broad-except
        if not isinstance(exc, errors):
            raise
        return result("crit", "postgres %s: query failed: %s" % (target, " ".join(str(exc).split())), **details)
    finally:
        conn.close()
    role = details["role"]
    text = "postgres %s: %s %s" % (target, role, details["server_version"])
    if in_recovery:
        text += ", lag %ss / %s bytes" % (details["lag_seconds"], lag_b)
    elif details["replicas"]:
        text += ", %d replica(s) streaming" % len(details["replicas"])
    problems = []
    if check["expect_role"] and role != check["expect_role"]:
        problems.append("role is %s, expected %s" % (role, check["expect_role"]))
    if check["max_lag_seconds"] is not None and lag_s is not None and lag_s > check["max_lag_seconds"]:
        problems.append("replication lag %.1fs > max_lag_seconds %g" % (lag_s, check["max_lag_seconds"]))
    if check["max_lag_bytes"] is not None and lag_b is not None and lag_b > check["max_lag_bytes"]:
        problems.append("replication lag %d bytes > max_lag_bytes %d" % (lag_b, check["max_lag_bytes"]))
    if problems:
        return result("crit", "%s: %s" % (text, "; ".join(problems)), **details)
    if in_recovery and details["wal_receiver_status"] != "streaming":
        return result("warn", "%s: WAL receiver is %s, not streaming" % (text, details["wal_receiver_status"] or "not running"), **details)
    return result("ok", text, **details)


def _resp_command(*args):
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode("utf-8")
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class RedisReplyError(Exception):
    pass


def _resp_read(stream):
    """Read one RESP2 reply; ``-ERR`` replies raise RedisReplyError."""
    line = stream.readline(65536)
    if not line.endswith(b"\r\n"):
        raise OSError("connection closed by the server")
    kind, payload = line[:1], line[1:-2]
    if kind == b"+":
        return payload.decode("utf-8", "replace")
    if kind == b"-":
        raise RedisReplyError(payload.decode("utf-8", "replace"))
    if kind == b":":
        return int(payload)
    if kind == b"$":
        size = int(payload)
        if size < 0:
            return None
        data = stream.read(size + 2)
        return data[:-2].decode("utf-8", "replace")
    if kind == b"*":
        size = int(payload)
        return None if size < 0 else [_resp_read(stream) for _i in range(size)]
    raise OSError("not a Redis server (unexpected reply %r)" % line[:40])


def redis_ping(url, password=None, username=None, timeout=5.0, validate_certs=True):
    """PING a Redis server with a hand-written RESP exchange (no redis library needed).

    Returns a dict: pong, role, redis_version.  Raises OSError/RedisReplyError.
    """
    parts = urlsplit(url)
    user = username or (unquote(parts.username) if parts.username else None)
    pw = password or (unquote(parts.password) if parts.password else None)
    db = parts.path.strip("/")
    sock = socket.create_connection((parts.hostname, parts.port or 6379), timeout=timeout)
    try:
        if parts.scheme.lower() == "rediss":
            sock = _ssl_context(validate_certs).wrap_socket(sock, server_hostname=parts.hostname)
        stream = sock.makefile("rb")
        cmds = []
        if pw:
            cmds.append(_resp_command("AUTH", user, pw) if user and user != "default" else _resp_command("AUTH", pw))
        if db and db != "0":
            cmds.append(_resp_command("SELECT", db))
        sock.sendall(b"".join(cmds) + _resp_command("PING"))
        for _cmd in cmds:
            _resp_read(stream)
        pong = _resp_read(stream)
        info = {"pong": pong}
        sock.sendall(_resp_command("INFO", "server") + _resp_command("INFO", "replication"))
        text = ""
        for _i in range(2):
            try:
                text += _resp_read(stream) or ""
            except RedisReplyError:
                pass
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        info["role"] = fields.get("role")
        info["redis_version"] = fields.get("redis_version")
        return info
    finally:
        sock.close()


def probe_redis(check):
    parts = urlsplit(check["url"])
    target = "%s:%s" % (parts.hostname, parts.port or 6379)
    details = {"url": mask_text(check["url"], check_secrets(check)), "target": target}
    try:
        info = redis_ping(check["url"], check["password"], check["username"], check["timeout"], check["validate_certs"])
    except RedisReplyError as exc:
        return result("crit", "redis %s: %s" % (target, exc), **details)
    except (OSError, socket.timeout, ssl.SSLError, ValueError) as exc:
        return result("crit", "redis %s: %s" % (target, _net_reason(exc, check["timeout"])), **details)
    details.update(info)
    if info["pong"] != "PONG":
        return result("crit", "redis %s: PING answered %r" % (target, info["pong"]), **details)
    return result("ok", "redis %s: PONG (%s %s)" % (target, info["role"] or "unknown role", info["redis_version"] or ""), **details)


def probe_mongodb(check):
    details = {"uri": mask_text(check["uri"], check_secrets(check))}
    pymongo = lib("pymongo")
    if pymongo is None:
        return result("unknown", "mongodb: %s" % not_installed_reason("pymongo"), **details)
    ms = int(check["timeout"] * 1000)
    client = None
    try:
        client = pymongo.MongoClient(check["uri"], serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms)
        client.admin.command("ping")
        hello = client.admin.command("hello")
        build = client.admin.command("buildInfo")
    except pymongo.errors.PyMongoError as exc:
        return result("crit", "mongodb: %s" % " ".join(str(exc).split())[:300], **details)
    finally:
        if client is not None:
            client.close()
    role = "primary" if hello.get("isWritablePrimary") or hello.get("ismaster") else (
        "secondary" if hello.get("secondary") else "other")
    details.update({"role": role, "set_name": hello.get("setName"), "server_version": build.get("version")})
    return result("ok", "mongodb: ping ok (%s %s)" % (role, build.get("version")), **details)


def probe_container(check):
    details = {"service": check["service"], "docker_host": check["docker_host"]}
    docker = lib("docker")
    if docker is None:
        return result("unknown", "container %s: %s" % (check["service"], _docker_missing()), **details)
    labels = ["%s=%s" % (SERVICE_LABEL, check["service"])]
    if check["platform_host"]:
        labels.append("%s=%s" % (HOST_LABEL, check["platform_host"]))
    labels += ["%s=%s" % kv for kv in sorted(check["labels"].items())]
    try:
        # A pinned API version saves the version round trip; 1.41 is Docker 20.10 and Podman 4's compat API.
        kwargs = {"timeout": max(1, int(math.ceil(check["timeout"]))) * 2, "version": DOCKER_API_VERSION}
        if check["docker_host"]:
            kwargs["base_url"] = check["docker_host"]
        api = docker.APIClient(**kwargs) if check["docker_host"] else docker.from_env(**kwargs).api
        try:
            found = api.containers(all=True, filters={"label": labels})
            replicas = []
            for item in found:
                info = api.inspect_container(item["Id"])
                state = info.get("State") or {}
                cfg_labels = (info.get("Config") or {}).get("Labels") or {}
                replicas.append({
                    "name": (info.get("Name") or "").lstrip("/"),
                    "id": info.get("Id", "")[:12],
                    "replica": cfg_labels.get("io.mcp-platform.replica"),
                    "version": cfg_labels.get("io.mcp-platform.version"),
                    "status": state.get("Status"),
                    "running": bool(state.get("Running")),
                    "health": ((state.get("Health") or {}).get("Status")) or "none",
                    "restart_count": int(info.get("RestartCount") or 0),
                    "started_at": state.get("StartedAt"),
                })
        finally:
            api.close()
    except Exception as exc:  # pylint: disable=broad-except  # docker.errors.* and requests errors
        return result("crit", "container %s: Docker API error: %s" % (check["service"], " ".join(str(exc).split())[:300]), **details)
    replicas.sort(key=lambda r: (r["replica"] or "", r["name"]))
    if check["probe_path"]:
        _probe_replicas(check, found, replicas)
    details["replicas"] = replicas
    ready = [r for r in replicas if r["running"] and r["health"] in ("healthy", "none") and r.get("probe_ok", True)]
    details["running"] = len([r for r in replicas if r["running"]])
    details["ready"] = len(ready)
    text = "container %s: %d/%d replicas running and healthy" % (check["service"], len(ready), len(replicas))
    if len(ready) < check["min_replicas"]:
        bad = [_replica_text(r) for r in replicas if r not in ready]
        return result("crit", "%s, fewer than min_replicas %d%s" % (text, check["min_replicas"],
                                                                    (": " + ", ".join(bad)) if bad else ""), **details)
    problems = [_replica_text(r) for r in replicas if r not in ready]
    if check["max_restarts"] is not None:
        problems += ["%s restarted %d times > max_restarts %d" % (r["name"], r["restart_count"], check["max_restarts"])
                     for r in replicas if r["restart_count"] > check["max_restarts"]]
    if problems:
        return result("warn", "%s: %s" % (text, "; ".join(problems)), **details)
    return result("ok", text, **details)


def _replica_text(rep):
    text = "%s (%s, health %s" % (rep["name"], rep["status"], rep["health"])
    if "probe_ok" in rep and not rep["probe_ok"]:
        text += ", %s" % rep.get("probe_reason")
    return text + ")"


def _probe_replicas(check, found, replicas):
    """GET probe_path on each running replica's published probe_port, concurrently: the direct probe
    (bypassing the gateway) that tells a replica answering from one that only looks alive."""
    ports = {}
    for item in found:
        for port in item.get("Ports") or []:
            if port.get("PrivatePort") == check["probe_port"] and port.get("PublicPort"):
                host = port.get("IP") or "127.0.0.1"
                ports[item["Id"][:12]] = ("127.0.0.1" if host in ("0.0.0.0", "::") else host, port["PublicPort"])

    def one(rep):
        target = ports.get(rep["id"])
        if not rep["running"]:
            return
        if not target:
            rep.update(probe_ok=False, probe_reason="no published port %d" % check["probe_port"])
            return
        url = "http://%s:%s%s" % (target[0], target[1], check["probe_path"])
        start = time.monotonic()
        try:
            with build_opener().open(Request(url, headers={"User-Agent": "mcp.platform.mcp_health"}), timeout=check["timeout"]) as resp:
                code = resp.status
        except HTTPError as exc:
            code = exc.code
        except Exception as exc:  # pylint: disable=broad-except  # any failure to answer is a failed probe
            rep.update(probe_url=url, probe_ok=False, probe_reason="%s: %s" % (check["probe_path"], " ".join(str(exc).split())[:120]))
            return
        rep.update(probe_url=url, probe_code=code, probe_ok=code == 200,
                   probe_latency_ms=round((time.monotonic() - start) * 1000.0, 1),
                   probe_reason="%s answered HTTP %s" % (check["probe_path"], code))

    threads = [threading.Thread(target=one, args=(rep,)) for rep in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def probe_logs(check):
    """Error and warning lines of the matching containers' logs over the last `since` seconds."""
    details = {"since": check["since"]}
    docker = lib("docker")
    if docker is None:
        return result("unknown", "logs: %s" % _docker_missing(), **details)
    labels = ["io.mcp-platform.managed=true"]
    if check["service"]:
        labels.append("%s=%s" % (SERVICE_LABEL, check["service"]))
    if check["platform_host"]:
        labels.append("%s=%s" % (HOST_LABEL, check["platform_host"]))
    labels += ["%s=%s" % kv for kv in sorted(check["labels"].items())]
    try:
        kwargs = {"timeout": max(1, int(math.ceil(check["timeout"]))) * 4, "version": DOCKER_API_VERSION}
        if check["docker_host"]:
            kwargs["base_url"] = check["docker_host"]
        client = docker.DockerClient(**kwargs) if check["docker_host"] else docker.from_env(**kwargs)
        try:
            found = recent_problems(client, labels, check["since"], check["last"])
        finally:
            client.close()
    except LogsError as exc:
        return result("crit", "logs: %s" % " ".join(str(exc).split())[:300], **details)
    except Exception as exc:  # pylint: disable=broad-except  # docker.errors.* and requests errors
        return result("crit", "logs: Docker API error: %s" % " ".join(str(exc).split())[:300], **details)
    details.update(found)
    errors, warnings = found["counts"].get("error", 0), found["counts"].get("warn", 0)
    text = "%d errors, %d warnings in the last %s across %d containers" % (
        errors, warnings, ("%d h" % (check["since"] // 3600)) if check["since"] % 3600 == 0 else ("%d s" % check["since"]),
        len(found["containers"]))
    if errors >= check["crit_errors"]:
        return result("crit", "%s (crit_errors %d)" % (text, check["crit_errors"]), **details)
    if errors >= check["warn_errors"] and check["warn_errors"] > 0:
        return result("warn", "%s (warn_errors %d)" % (text, check["warn_errors"]), **details)
    return result("ok", text, **details)


def _threshold(value, warn, crit):
    if value >= crit:
        return "crit", "crit_percent %g" % crit
    if value >= warn:
        return "warn", "warn_percent %g" % warn
    return "ok", None


def probe_disk(check):
    path = check["path"]
    try:
        st = os.statvfs(path)
    except OSError as exc:
        return result("crit", "disk %s: %s" % (path, exc.strerror or exc), path=path)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    pct = round(100.0 * used / (used + avail), 2) if used + avail else 0.0
    inodes_pct = round(100.0 * (st.f_files - st.f_ffree) / st.f_files, 2) if st.f_files else None
    details = {"path": path, "used_percent": pct, "used_bytes": used, "available_bytes": avail,
               "total_bytes": st.f_blocks * st.f_frsize, "inodes_used_percent": inodes_pct}
    status, limit = _threshold(pct, check["warn_percent"], check["crit_percent"])
    text = "disk %s: %.1f%% used, %.1f GiB free" % (path, pct, avail / 1073741824.0)
    return result(status, "%s >= %s" % (text, limit) if limit else text, **details)


def read_meminfo(path="/proc/meminfo"):
    values = {}
    with open(path) as handle:
        for line in handle:
            key, _sep, rest = line.partition(":")
            fields = rest.split()
            if fields and fields[0].isdigit():
                values[key.strip()] = int(fields[0]) * 1024
    return values


def probe_memory(check):
    try:
        mem = read_meminfo()
    except (OSError, IOError) as exc:
        return result("unknown", "memory: cannot read /proc/meminfo (%s); only Linux is supported" % (exc.strerror or exc))
    total = mem.get("MemTotal")
    if not total:
        return result("unknown", "memory: /proc/meminfo has no MemTotal")
    avail = mem.get("MemAvailable")
    if avail is None:  # kernels before 3.14
        avail = mem.get("MemFree", 0) + mem.get("Buffers", 0) + mem.get("Cached", 0)
    pct = round(100.0 * (total - avail) / total, 2)
    details = {"used_percent": pct, "total_bytes": total, "available_bytes": avail,
               "swap_total_bytes": mem.get("SwapTotal"), "swap_free_bytes": mem.get("SwapFree")}
    status, limit = _threshold(pct, check["warn_percent"], check["crit_percent"])
    text = "memory: %.1f%% used, %.1f GiB available" % (pct, avail / 1073741824.0)
    return result(status, "%s >= %s" % (text, limit) if limit else text, **details)


PROBES = {
    "http": probe_http,
    "mcp": probe_mcp,
    "tcp": probe_tcp,
    "tls": probe_tls,
    "postgres": probe_postgres,
    "redis": probe_redis,
    "mongodb": probe_mongodb,
    "container": probe_container,
    "logs": probe_logs,
    "disk": probe_disk,
    "memory": probe_memory,
}


def probe_budget(check):
    """Seconds a probe may take before the runner declares it hung (several round trips per probe)."""
    steps = {"mcp": 5, "postgres": 3, "tls": 3, "redis": 3, "container": 4, "logs": 8}.get(check["type"], 2)
    return check["timeout"] * steps + 2.0


def now_ms():
    return time.monotonic() * 1000.0
