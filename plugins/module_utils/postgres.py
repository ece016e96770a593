# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one PostgreSQL connection layer: DSNs, the connection vocabulary, connecting, masking (PRIVATE).

Backup, health, failover and maintenance all reach PostgreSQL through this file, so a DSN means the same
thing everywhere and a password never leaks through one of them. psycopg2 is preferred (it is what the node
role installs); psycopg 3 is accepted where only it is installed.

Where a connection parameter comes from, highest first: an explicit option (``postgres_host`` ...), the DSN
(``postgres_dsn``), then the libpq environment (``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGPASSWORD``,
``PGDATABASE``, ``PGSSLMODE``), the same order libpq itself applies. The environment is read here rather than
left to libpq so that a password from ``PGPASSWORD`` (an AWX credential) is known, and therefore masked.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import time
from urllib.parse import urlsplit

from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError
from ansible_collections.mcp.platform.plugins.module_utils.secrets import embedded_secrets, mask_text

try:
    import psycopg2
    import psycopg2.extensions
    DRIVER, DRIVER_IMPORT_ERROR = "psycopg2", None
    DRIVER_ERRORS = (psycopg2.Error,)
except ImportError as exc:  # pragma: no cover - depends on the node
    psycopg2 = None
    try:
        import psycopg
        import psycopg.conninfo
        DRIVER, DRIVER_IMPORT_ERROR = "psycopg", None
        DRIVER_ERRORS = (psycopg.Error,)
    except ImportError:
        psycopg = None
        DRIVER, DRIVER_IMPORT_ERROR = None, exc
        DRIVER_ERRORS = ()
else:
    psycopg = None

HAS_DRIVER = DRIVER is not None

# option -> (libpq keyword, environment variable)
CONNECTION_OPTIONS = (
    ("postgres_host", "host", "PGHOST"),
    ("postgres_port", "port", "PGPORT"),
    ("postgres_user", "user", "PGUSER"),
    ("postgres_password", "password", "PGPASSWORD"),
    ("postgres_dbname", "dbname", "PGDATABASE"),
    ("postgres_ssl_mode", "sslmode", "PGSSLMODE"),
)

_KV = re.compile(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)")


class PostgresError(PlatformError):
    """A connection or DSN problem; the message is masked."""


def postgres_argument_spec():
    """The connection options every module that talks to PostgreSQL accepts (doc fragment ``postgres``)."""
    return dict(
        postgres_dsn=dict(type="str", no_log=True),
        postgres_host=dict(type="str"),
        postgres_port=dict(type="int"),
        postgres_user=dict(type="str"),
        postgres_password=dict(type="str", no_log=True),
        postgres_dbname=dict(type="str"),
        postgres_ssl_mode=dict(type="str", choices=["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]),
        connect_timeout=dict(type="int", default=5),
    )


def require_driver():
    if not HAS_DRIVER:
        raise PostgresError("psycopg2 (pip package psycopg2-binary) or psycopg is required on the managed node "
                            "(the mcp.platform.node role installs it): %s" % DRIVER_IMPORT_ERROR)


def parse_dsn(dsn, option="postgres_dsn"):
    """The DSN (key=value or URI form) as a dict. Raises PostgresError naming ``option`` when it is invalid."""
    require_driver()
    try:
        if psycopg2 is not None:
            return psycopg2.extensions.parse_dsn(dsn)
        return psycopg.conninfo.conninfo_to_dict(dsn)
    except DRIVER_ERRORS as exc:
        raise PostgresError("%s is not a valid libpq connection string or URI (%s): %s" % (
            option, mask_text(dsn), mask_text(" ".join(str(exc).split()), [dsn])))


def make_dsn(params):
    """A key=value DSN from a dict (quoting done by the driver)."""
    require_driver()
    params = dict((k, str(v)) for k, v in params.items() if v not in (None, ""))
    if psycopg2 is not None:
        return psycopg2.extensions.make_dsn(**params)
    return psycopg.conninfo.make_conninfo(**params)


def resolve(params, environ=None, option="postgres_dsn", defaults=None):
    """Connection keywords from module params: explicit options over ``params[option]`` over the environment."""
    environ = os.environ if environ is None else environ
    out = dict(defaults or {})
    for _opt, key, env in CONNECTION_OPTIONS:
        if environ.get(env):
            out[key] = environ[env]
    if params.get(option):
        out.update(parse_dsn(params[option], option))
    for opt, key, _env in CONNECTION_OPTIONS:
        if params.get(opt) not in (None, ""):
            out[key] = str(params[opt])
    return out


def resolve_dsn(params, environ=None, option="postgres_dsn", defaults=None):
    """``resolve`` as a DSN string, for callers that hand a DSN on (or None when nothing is set)."""
    out = resolve(params, environ, option, defaults)
    return make_dsn(out) if out else None


def with_password(dsn, password, option="postgres_dsn"):
    """``dsn`` with ``password`` filled in when the DSN carries none (a PGPASSWORD-style shared password)."""
    if not password or not dsn:
        return dsn
    parts = parse_dsn(dsn, option)
    if parts.get("password"):
        return dsn
    parts["password"] = password
    return make_dsn(parts)


def dsn_secrets(*dsns):
    """Every form of the passwords the DSNs carry, for masking (works without a driver)."""
    out = set()
    for dsn in dsns:
        if not dsn:
            continue
        out |= embedded_secrets(dsn)
        if HAS_DRIVER:
            try:
                pw = parse_dsn(dsn).get("password")
            except PostgresError:
                pw = None
            if pw:
                out.add(pw)
    return out


def target(dsn):
    """user@host:port/dbname of a DSN, for messages: never the password, needs no driver."""
    if not dsn:
        return "(no DSN)"
    if "://" in dsn:
        parts = urlsplit(dsn)
        try:
            port = parts.port
        except ValueError:
            port = None
        return "%s@%s:%s/%s" % (parts.username or "", parts.hostname or "", port or 5432, parts.path.lstrip("/"))
    kv = dict((m.group(1).lower(), m.group(2).strip("'")) for m in _KV.finditer(dsn))
    return "%s@%s:%s/%s" % (kv.get("user", ""), kv.get("host", ""), kv.get("port", 5432), kv.get("dbname", ""))


def describe_dsn(dsn):
    """host:port/dbname for messages (never the password)."""
    try:
        p = parse_dsn(dsn)
    except PostgresError:
        return mask_text(dsn)
    return "%s:%s/%s" % (p.get("host", "localhost"), p.get("port", "5432"), p.get("dbname", p.get("user", "")))


def error_text(exc, *dsns):
    """A driver error on one line, with every password of ``dsns`` masked."""
    return mask_text(" ".join(str(exc).split()), dsn_secrets(*dsns))


def connect(dsn, timeout=5, autocommit=True, **overrides):
    """An open connection (driver errors propagate: callers decide what a refusal means)."""
    require_driver()
    kwargs = dict(overrides)
    kwargs.setdefault("connect_timeout", max(1, int(timeout)))
    if psycopg2 is not None:
        conn = psycopg2.connect(dsn, **kwargs)
        conn.autocommit = autocommit
        return conn
    return psycopg.connect(dsn, autocommit=autocommit, **kwargs)


def query(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        if cur.description is None:
            return []
        return cur.fetchall()


def query_one(conn, sql, args=None):
    rows = query(conn, sql, args)
    return rows[0] if rows else None


def split_password(dsn):
    """(conninfo without password, password or None) so the password travels in PGPASSWORD, not argv."""
    p = parse_dsn(dsn)
    pw = p.pop("password", None)

    def q(v):
        v = str(v)
        if v and not re.search(r"[\s'\\]", v):
            return v
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return " ".join("%s=%s" % (k, q(v)) for k, v in sorted(p.items())), pw


# --------------------------------------------------------------------------- the read-only switch (maintenance)

def get_read_only(dsn, timeout=5):
    conn = connect(dsn, timeout)
    try:
        return query_one(conn, "SHOW default_transaction_read_only")[0] == "on"
    finally:
        conn.close()


def set_read_only(dsn, enabled, timeout=5):
    """ALTER SYSTEM SET/RESET default_transaction_read_only + pg_reload_conf(). Returns True if changed."""
    conn = connect(dsn, timeout)
    try:
        current = query_one(conn, "SHOW default_transaction_read_only")[0] == "on"
        if current == bool(enabled):
            return False
        if enabled:
            query(conn, "ALTER SYSTEM SET default_transaction_read_only = on")
        else:
            query(conn, "ALTER SYSTEM RESET default_transaction_read_only")
        query(conn, "SELECT pg_reload_conf()")
    finally:
        conn.close()
    # The reload is asynchronous: wait until new sessions see it.
    deadline = time.monotonic() + 10
    while get_read_only(dsn, timeout) != bool(enabled):
        if time.monotonic() > deadline:
            raise PostgresError("default_transaction_read_only did not become %s after pg_reload_conf()"
                                % ("on" if enabled else "off"))
        time.sleep(0.05)
    return True
