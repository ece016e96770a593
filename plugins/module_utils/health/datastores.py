# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The datastore probes: postgres (role and replication lag), redis (PING over hand-written RESP) and mongodb.

PostgreSQL is reached through the collection's one connection layer (``postgres.py``), imported by the probe on
first use because it imports the driver when it loads; pymongo is imported on first use too. Redis needs no
client library: a few RESP2 commands are all a health check sends.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import socket
import ssl
from urllib.parse import unquote, urlsplit

from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError
from ansible_collections.mcp.platform.plugins.module_utils.health.checks import check_secrets, lib, result
from ansible_collections.mcp.platform.plugins.module_utils.health.network import net_reason, ssl_context
from ansible_collections.mcp.platform.plugins.module_utils.node_requirements import not_installed_reason
from ansible_collections.mcp.platform.plugins.module_utils.secrets import mask_text

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


def postgres_layer():
    """``postgres.py``, imported on first use: loading it imports psycopg2 (or psycopg)."""
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.mcp.platform.plugins.module_utils import postgres
    return postgres


def probe_postgres(check):
    pg = postgres_layer()
    target = pg.target(check["dsn"])
    details = {"dsn": mask_text(check["dsn"], check_secrets(check)), "target": target}
    if not pg.HAS_DRIVER:
        missing = not_installed_reason("psycopg2", "neither psycopg2 nor psycopg is installed")
        return result("unknown", "postgres %s: %s" % (target, missing), **details)
    overrides = {"password": check["password"]} if check["password"] else {}
    try:
        conn = pg.connect(check["dsn"], max(1, int(math.ceil(check["timeout"]))), autocommit=True, **overrides)
    except pg.DRIVER_ERRORS as exc:
        return result("crit", "postgres %s: cannot connect: %s" % (target, pg.error_text(exc, check["dsn"])), **details)
    try:
        pg.query(conn, "SET statement_timeout = %d" % max(1, int(check["timeout"] * 1000)))
        pg.query_one(conn, "SELECT 1")
        in_recovery, version = pg.query(conn, "SELECT pg_is_in_recovery(), current_setting('server_version')")[0]
        details.update({"role": "replica" if in_recovery else "primary", "server_version": version})
        lag_s = lag_b = None
        if in_recovery:
            recv, replay, lag_b, lag_s, receiver = pg.query(conn, _PG_REPLICA_SQL)[0]
            details.update({"receive_lsn": recv, "replay_lsn": replay, "lag_bytes": lag_b,
                            "lag_seconds": None if lag_s is None else round(lag_s, 3), "wal_receiver_status": receiver})
        else:
            reps = [{"application_name": r[0], "client_addr": r[1], "state": r[2], "sync_state": r[3],
                     "lag_bytes": r[4], "lag_seconds": None if r[5] is None else round(r[5], 3)}
                    for r in pg.query(conn, _PG_PRIMARY_SQL)]
            details["replicas"] = reps
            lag_b = max([r["lag_bytes"] for r in reps if r["lag_bytes"] is not None] or [None]) if reps else None
            lag_s = max([r["lag_seconds"] for r in reps if r["lag_seconds"] is not None] or [None]) if reps else None
    except pg.DRIVER_ERRORS as exc:
        return result("crit", "postgres %s: query failed: %s" % (target, pg.error_text(exc, check["dsn"])), **details)
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
        receiver = details["wal_receiver_status"] or "not running"
        return result("warn", "%s: WAL receiver is %s, not streaming" % (text, receiver), **details)
    return result("ok", text, **details)


def _resp_command(*args):
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode("utf-8")
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class RedisReplyError(PlatformError):
    """The server answered a command with a RESP error (``-ERR``, ``-NOAUTH``, ``-WRONGPASS`` ...)."""


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
            sock = ssl_context(validate_certs).wrap_socket(sock, server_hostname=parts.hostname)
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
        return result("crit", "redis %s: %s" % (target, net_reason(exc, check["timeout"])), **details)
    details.update(info)
    if info["pong"] != "PONG":
        return result("crit", "redis %s: PING answered %r" % (target, info["pong"]), **details)
    return result("ok", "redis %s: PONG (%s %s)" % (
        target, info["role"] or "unknown role", info["redis_version"] or ""), **details)


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
