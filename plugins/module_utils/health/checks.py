# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health check vocabulary: check types, their options and defaults, validation, and what a probe returns.

mcp_health's argument spec (``check_suboptions``), its doc fragment and every probe agree on what a check is
through this file. Every probe takes a check *validated* here (``validate_check``) and returns ``result(...)``:
``{"status": "ok|warn|crit|unknown", "reason": "<one line>", "details": {...}}``. Probes never raise for an
unhealthy target; the runner turns unexpected exceptions into ``unknown``. Optional client libraries (pymongo,
docker, cryptography) are imported on first use through ``lib``, so a run of disk/http checks does not pay for
importing them; a missing one makes the affected check ``unknown`` with a reason that names it, its pip package
and the role that installs it (``node_requirements``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import math
import re
import time
from urllib.parse import urlsplit

from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError
from ansible_collections.mcp.platform.plugins.module_utils.mcp_client import DEFAULT_PROTOCOL_VERSION
from ansible_collections.mcp.platform.plugins.module_utils.secrets import (
    SENSITIVE_HEADER,
    embedded_secrets,
    header_secrets,
    mask_text,
)

STATUSES = ("ok", "warn", "crit", "unknown")
CHECK_TYPES = ("http", "mcp", "tcp", "tls", "postgres", "redis", "mongodb", "container", "logs", "disk", "memory",
               "gateway_errors")

# Optional client libraries are imported on first use: a run of disk/http checks should not pay for
# importing docker, pymongo and cryptography on every managed node.
_LIBS = {}


def lib(name):
    """The imported module ``name`` or None when it is not installed (cached)."""
    if name not in _LIBS:
        try:
            _LIBS[name] = importlib.import_module(name)
        except ImportError:
            _LIBS[name] = None
    return _LIBS[name]


def check_secrets(check):
    """Every secret string a (validated or raw) check carries: passwords, DSN passwords, sensitive headers."""
    secrets = set()
    if check.get("password"):
        secrets.add(check["password"])
    for key in ("dsn", "uri", "url", "docker_host"):
        if isinstance(check.get(key), str):
            secrets |= embedded_secrets(check[key])
    return secrets | header_secrets(check.get("headers"))


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------
class CheckValidationError(ValueError, PlatformError):
    """Bad check definition; ``option`` is the option path, e.g. ``checks[2].url``."""

    def __init__(self, option, message):
        super(CheckValidationError, self).__init__("%s: %s" % (option, message))
        self.option = option


REQUIRED = object()

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
    "services": "strlist", "max_ratio": "float", "baseline": "numdict",
}

TYPE_FIELDS = {
    "http": {"url": REQUIRED, "status_code": [200], "body_regex": None, "headers": {}, "validate_certs": True},
    "mcp": {"url": REQUIRED, "headers": {}, "validate_certs": True, "protocol_version": DEFAULT_PROTOCOL_VERSION,
            "expect_server_name": None, "expect_version": None, "min_tools": None, "delete_session": True},
    "tcp": {"host": REQUIRED, "port": REQUIRED},
    "tls": {"host": REQUIRED, "port": 443, "server_name": None, "warn_days": 30.0, "crit_days": 7.0,
            "validate_certs": False},
    "postgres": {"dsn": REQUIRED, "password": None, "expect_role": None, "max_lag_seconds": None,
                 "max_lag_bytes": None},
    "redis": {"url": REQUIRED, "username": None, "password": None, "validate_certs": True},
    "mongodb": {"uri": REQUIRED},
    "container": {"service": REQUIRED, "docker_host": None, "platform_host": None, "labels": {}, "min_replicas": 1,
                  "max_restarts": None, "probe_path": None, "probe_port": 8080},
    "logs": {"docker_host": None, "service": None, "platform_host": None, "labels": {}, "since": 86400,
             "warn_errors": 1, "crit_errors": 100, "last": 20},
    "disk": {"path": REQUIRED, "warn_percent": 80.0, "crit_percent": 90.0},
    "memory": {"warn_percent": 75.0, "crit_percent": 85.0},
    "gateway_errors": {"url": REQUIRED, "services": REQUIRED, "max_ratio": 0.01, "baseline": {}, "validate_certs": True},
}
SECRET_FIELDS = ("dsn", "uri", "password")
ROLES = ("primary", "replica")


def check_suboptions():
    """The AnsibleModule suboption spec of ``checks`` (the union of all types' keys; no defaults, see TYPE_FIELDS)."""
    kinds = {"str": {"type": "str"}, "float": {"type": "float"}, "int": {"type": "int"}, "bool": {"type": "bool"},
             "dict": {"type": "dict"}, "intlist": {"type": "list", "elements": "int"},
             "strlist": {"type": "list", "elements": "str"}, "numdict": {"type": "dict"}}
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
               if v is not None and str(v) and not SENSITIVE_HEADER.search(str(k)))


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
    if kind in ("intlist", "strlist"):
        items = value if isinstance(value, (list, tuple)) else [value]
        if not items:
            raise CheckValidationError(path, "must not be empty")
        return [_coerce("%s[%d]" % (path, i), kind[:-4], v) for i, v in enumerate(items)]
    if kind == "dict":
        if not isinstance(value, dict):
            raise CheckValidationError(path, "must be a dictionary")
        return dict((str(k), str(v)) for k, v in value.items())
    if kind == "numdict":
        if not isinstance(value, dict):
            raise CheckValidationError(path, "must be a dictionary")
        return dict((str(k), _coerce("%s.%s" % (path, k), "float", v)) for k, v in value.items())
    raise CheckValidationError(path, "unsupported kind %s" % kind)  # pragma: no cover


def _check_url(path, url, schemes):
    try:
        parts = urlsplit(url)
        _port = parts.port  # raises ValueError on a bad port
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
            out[key] = list(default) if isinstance(default, list) else (
                dict(default) if isinstance(default, dict) else default)
    out.setdefault("timeout", float(default_timeout))
    _check_range("%s.timeout" % prefix, out["timeout"], 0.001, 3600)

    def opt(key):
        return "%s.%s" % (prefix, key)

    if ctype in ("http", "mcp", "gateway_errors"):
        _check_url(opt("url"), out["url"], ("http", "https"))
    if ctype == "gateway_errors":
        _check_range(opt("max_ratio"), out["max_ratio"], 0, 1)
        unknown = sorted(set(out["baseline"]) - {"requests", "errors"})
        if unknown:
            raise CheckValidationError(opt("baseline"), "takes only requests and errors (an earlier result's details), "
                                                        "not %s" % ", ".join(unknown))
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
            raise CheckValidationError(opt("warn_days"), "must be >= crit_days (%s), got %s" % (
                out["crit_days"], out["warn_days"]))
    if ctype == "postgres":
        dsn = out["dsn"]
        if "://" in dsn:
            if urlsplit(dsn).scheme.lower() not in ("postgresql", "postgres"):
                raise CheckValidationError(opt("dsn"), "must be a postgresql:// URI or a key=value connection string")
            try:
                _port = urlsplit(dsn).port  # raises ValueError on a bad port
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
            raise CheckValidationError(opt("warn_errors"), "must be <= crit_errors (%s), got %s" % (
                out["crit_errors"], out["warn_errors"]))
        if out["docker_host"] is not None and not re.match(r"^(unix|tcp|http|https|ssh|npipe)://", out["docker_host"]):
            raise CheckValidationError(opt("docker_host"), "must be a unix://, tcp://, http(s):// or ssh:// address")
    if ctype in ("disk", "memory"):
        _check_range(opt("warn_percent"), out["warn_percent"], 0, 100)
        _check_range(opt("crit_percent"), out["crit_percent"], 0, 100)
        if out["warn_percent"] > out["crit_percent"]:
            raise CheckValidationError(opt("warn_percent"), "must be <= crit_percent (%s), got %s" % (
                out["crit_percent"], out["warn_percent"]))
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
            raise CheckValidationError("checks[%d].name" % idx, "duplicate check name %r (also checks[%d])" % (
                norm["name"], seen[norm["name"]]))
        seen[norm["name"]] = idx
        out.append(norm)
    return out


# ---------------------------------------------------------------------------------------------
# what a probe returns, and how long it may take
# ---------------------------------------------------------------------------------------------
def result(status, reason, **details):
    return {"status": status, "reason": reason, "details": details}


def probe_budget(check):
    """Seconds a probe may take before the runner declares it hung (several round trips per probe)."""
    steps = {"mcp": 5, "postgres": 3, "tls": 3, "redis": 3, "container": 4, "logs": 8}.get(check["type"], 2)
    return check["timeout"] * steps + 2.0


def now_ms():
    return time.monotonic() * 1000.0
