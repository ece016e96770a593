# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mcp.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL high availability: failover gates, promotion, rejoin (pg_rewind / pg_basebackup).

Plain Python (no AnsibleModule) so unit tests call it directly. Every message that leaves
this file goes through :func:`mask`, so a password in a DSN never reaches a log or a result.

Terms: ``primary_dsn`` is the old primary (probed for "down" before a promotion, and the node
turned into a replica by :func:`rejoin`); ``candidate_dsn`` is the replica that is promoted
(and, after that, the new primary that :func:`rejoin` follows).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import subprocess
import time

try:
    import psycopg2
    import psycopg2.extensions
    HAS_PSYCOPG2 = True
    PSYCOPG2_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the host
    HAS_PSYCOPG2 = False
    PSYCOPG2_IMPORT_ERROR = exc

DEFAULT_MAX_LAG_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_LAG_SECONDS = 30.0
MASK = "********"

_PW_KV = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_PW_URI = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)(@)", re.IGNORECASE)
_PW_QUERY = re.compile(r"([?&]password=)([^&\s]*)", re.IGNORECASE)

# Connection errors that prove a server answered (so it is not down).
_ANSWERED = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "does not exist",
    "the database system is",
    "too many clients",
    "ssl",
    "authentication",
)
_NAME_RESOLUTION = ("could not translate host name", "name or service not known", "temporary failure in name resolution")


class HAError(Exception):
    """A failure with a message that is safe to show (already masked)."""


PGError = psycopg2.Error if HAS_PSYCOPG2 else HAError


def mask(text, secrets=()):
    """Remove passwords from ``text``: key=value and URI forms, plus any literal secret given."""
    if text is None:
        return text
    text = str(text)
    for secret in secrets:
        if secret and len(str(secret)) >= 1:
            text = text.replace(str(secret), MASK)
    text = _PW_KV.sub(lambda m: m.group(1) + MASK, text)
    text = _PW_URI.sub(lambda m: m.group(1) + MASK + m.group(3), text)
    text = _PW_QUERY.sub(lambda m: m.group(1) + MASK, text)
    return text


def require_driver():
    if not HAS_PSYCOPG2:
        raise HAError("psycopg2 is required (pip install psycopg2-binary): %s" % PSYCOPG2_IMPORT_ERROR)


def parse_dsn(dsn):
    """Return the DSN as a dict (key=value or URI form). Raises HAError (masked) when invalid."""
    require_driver()
    try:
        return psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError as exc:
        raise HAError("invalid DSN %s: %s" % (mask(dsn), mask(str(exc).strip(), [dsn])))


def dsn_secrets(*dsns):
    out = []
    for dsn in dsns:
        if not dsn:
            continue
        out.append(dsn)
        try:
            pw = parse_dsn(dsn).get("password")
        except HAError:
            pw = None
        if pw:
            out.append(pw)
    return out


def describe_dsn(dsn):
    """host:port/dbname for messages (never the password)."""
    try:
        p = parse_dsn(dsn)
    except HAError:
        return mask(dsn)
    return "%s:%s/%s" % (p.get("host", "localhost"), p.get("port", "5432"), p.get("dbname", p.get("user", "")))


def connect(dsn, timeout=5, autocommit=True):
    require_driver()
    conn = psycopg2.connect(dsn, connect_timeout=max(1, int(timeout)))
    conn.autocommit = autocommit
    return conn


def query(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        if cur.description is None:
            return []
        return cur.fetchall()


def query_one(conn, sql, args=None):
    rows = query(conn, sql, args)
    return rows[0] if rows else None


def _err_text(exc):
    return " ".join(str(exc).split())


def probe(dsn, timeout=5):
    """Try to reach a server. Returns dict(reachable, answered, in_recovery, detail).

    ``reachable`` is True when a session opened; ``answered`` is True when a server process
    answered at all (a refused login still proves the server is alive).
    """
    secrets = dsn_secrets(dsn)
    try:
        conn = connect(dsn, timeout)
    except PGError as exc:
        text = _err_text(exc)
        low = text.lower()
        if any(k in low for k in _NAME_RESOLUTION):
            return dict(reachable=False, answered=None, in_recovery=None,
                        detail="host name could not be resolved (check the DSN): %s" % mask(text, secrets))
        answered = any(k in low for k in _ANSWERED)
        return dict(reachable=False, answered=answered, in_recovery=None, detail=mask(text, secrets))
    try:
        in_rec = bool(query_one(conn, "SELECT pg_is_in_recovery()")[0])
    finally:
        conn.close()
    return dict(reachable=True, answered=True, in_recovery=in_rec, detail="accepting connections")


CONTROLLER = "controller"
_YES = ("true", "yes", "on", "1")
_NO = ("false", "no", "off", "0")
# Keys of a dict entry that carry a verdict: (key, True when the key's value means "down" when true).
_VERDICT_KEYS = (("down", True), ("reachable", False), ("is_available", False), ("failed", True))


def _flag(value):
    """A bool from a bool, 0/1 or a yes/no/true/false/on/off string; None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _YES:
            return True
        if low in _NO:
            return False
    return None


def _verdict(item):
    """(verdict, detail) of one confirmation: True = down, False = still sees it, None = could not be asked.

    Raises HAError with the reason only (the caller names the item).
    """
    if isinstance(item, bool):
        return item, "given as %s" % ("true (down)" if item else "false (up)")
    if isinstance(item, str):
        low = item.strip().lower()
        if low in _YES + ("down",):
            return True, "given as %r" % item
        if low in _NO + ("up",):
            return False, "given as %r" % item
        raise HAError("a string must be true/false/yes/no/down/up")
    if not isinstance(item, dict):
        raise HAError("use a boolean, a string or a dict")
    given = item.get("detail")
    if given is None:
        given = item.get("msg")
    given = None if given is None else " ".join(str(given).split())
    for key in ("unreachable", "skipped"):
        if _flag(item.get(key)) is True:
            return None, given or ("could not be asked (%s: true)" % key)
    for key, true_means_down in _VERDICT_KEYS:
        if key in item:
            value = _flag(item[key])
            if value is None:
                raise HAError("%r must be a boolean (got %r)" % (key, item[key]))
            return value == true_means_down, given or "%s: %s" % (key, "true" if value else "false")
    raise HAError("a dict needs 'down', 'reachable', 'is_available' or 'failed' (or 'unreachable: true' for a vantage "
                  "point that could not be asked); it has %s" % (", ".join(repr(k) for k in sorted(item, key=str)) or "no keys"))


def _describe_item(item):
    # Keys only for dicts: a registered result may hold anything.
    return ("dict with keys %s" % sorted(str(k) for k in item)) if isinstance(item, dict) else repr(item)


def interpret_confirmation(item):
    """One entry of ``primary_down_confirmations``: True (down), False (still sees the primary) or None (could not be asked).

    Accepted: a bool; a string true/false/yes/no/down/up; a dict with ``down`` (true = down), ``reachable`` or
    ``is_available`` (true = up), or ``failed`` (a probe that fails when the primary cannot be reached, e.g.
    ``wait_for``); a dict with ``unreachable: true`` (or a registered ``skipped: true`` result) is a vantage point
    that could not be asked. Raises HAError naming the item otherwise.
    """
    try:
        return _verdict(item)[0]
    except HAError as exc:
        raise HAError("cannot interpret primary_down_confirmations item %s: %s" % (_describe_item(item), exc))


def vantage_point(item, index):
    """``dict(name, status, down, detail)`` for entry ``index`` (1-based) of ``primary_down_confirmations``.

    ``status`` is ``down``, ``up`` (still sees the primary) or ``unknown`` (could not be asked); ``down`` is
    ``status == 'down'``. The name is the dict's ``name``, else ``vantage-<index>``. Raises HAError naming the item.
    """
    name = "vantage-%d" % index
    if isinstance(item, dict) and "name" in item:
        if not isinstance(item["name"], str) or not item["name"].strip():
            raise HAError("primary_down_confirmations item %d: 'name' must be a non-empty string (got %r)" % (index, item["name"]))
        name = item["name"].strip()
    try:
        verdict, detail = _verdict(item)
    except HAError as exc:
        raise HAError("cannot interpret primary_down_confirmations item %d (%s, %s): %s" % (index, name, _describe_item(item), exc))
    status = "unknown" if verdict is None else ("down" if verdict else "up")
    return dict(name=name, status=status, down=status == "down", detail=detail)


def primary_down_quorum(controller_down, controller_detail, confirmations=(), min_confirmations=1, secrets=()):
    """The ``primary_down`` vote. Returns ``(passed, detail, vantage_points)``; pure (no network).

    The vantage points are the controller (``controller_down``: True = down, False = it still reaches the
    primary, None = no verdict, e.g. its name does not resolve) and every entry of ``confirmations`` (see
    :func:`vantage_point`). The gate passes iff all three hold:

    1. a strict majority of ALL vantage points report the primary down: ``down > total / 2``, where an entry that
       could not be asked stays in ``total`` and does not count as down;
    2. the controller is one of them: the promotion and the repointing run from the controller, so a primary
       the controller still reaches is alive and reachable from where we act (fence it and use fenced=true, or
       run a switchover, instead);
    3. at least ``min_confirmations`` vantage points besides the controller report it down (0: the controller
       may decide alone when no other vantage point is given).

    ``vantage_points`` is ``[dict(name, status, down, detail)]``, the controller first. The detail names the
    vantage points that still see the primary, those that could not be asked and those it is down from, e.g.
    ``2 of 4 vantage points report the primary down (a majority, 3, is required); still see it: mcp-2, mcp-3;
    down from: controller, mcp-1; controller: <probe detail>``. Details are masked with ``secrets``.
    """
    try:
        min_confirmations = int(min_confirmations)
    except (TypeError, ValueError):
        raise HAError("min_confirmations must be a whole number (got %r)" % (min_confirmations,))
    if min_confirmations < 0:
        raise HAError("min_confirmations must not be negative (got %d)" % min_confirmations)
    if confirmations is None:
        confirmations = []
    if isinstance(confirmations, (str, bytes, dict)) or not hasattr(confirmations, "__iter__"):
        raise HAError("primary_down_confirmations must be a list (got %r)" % type(confirmations).__name__)
    status = "unknown" if controller_down is None else ("down" if controller_down else "up")
    points = [dict(name=CONTROLLER, status=status, down=status == "down",
                   detail=" ".join(str(controller_detail if controller_detail is not None else "no probe").split()))]
    seen = {CONTROLLER: 0}
    for index, item in enumerate(confirmations, 1):
        point = vantage_point(item, index)
        if point["name"] in seen:
            first = seen[point["name"]]
            raise HAError("primary_down_confirmations item %d: vantage point %r appears twice (%s); each vantage point "
                          "counts once, and %r is the module's own probe"
                          % (index, point["name"], "as the controller" if first == 0 else "also item %d" % first, CONTROLLER))
        seen[point["name"]] = index
        points.append(point)
    for point in points:
        point["detail"] = mask(point["detail"], secrets)

    def names(st):
        return [p["name"] for p in points if p["status"] == st]

    down, up, unknown = names("down"), names("up"), names("unknown")
    total, majority = len(points), len(points) // 2 + 1
    others_down = len(down) - (1 if points[0]["down"] else 0)
    passed = len(down) >= majority and points[0]["down"] and others_down >= min_confirmations
    parts = ["%d of %d vantage points report the primary down (a majority, %d, is required)" % (len(down), total, majority)]
    if up:
        parts.append("still see it: %s" % ", ".join(up))
    if unknown:
        parts.append("could not be asked: %s" % ", ".join(unknown))
    if down:
        parts.append("down from: %s" % ", ".join(down))
    if not points[0]["down"]:
        parts.append("the controller must see it down too (the promotion runs from there; fence the old primary and "
                     "pass fenced=true, or run a switchover)")
    if others_down < min_confirmations:
        parts.append("%d vantage point(s) besides the controller report it down, min_confirmations is %d"
                     % (others_down, min_confirmations))
    parts.append("controller: %s" % points[0]["detail"])
    return bool(passed), mask("; ".join(parts), secrets), points


def primary_down_gate(primary, confirmations=(), fenced=False, min_confirmations=1, secrets=()):
    """The ``primary_down`` gate from the controller's :func:`probe` of the old primary. Returns (gate, vantage_points).

    The controller reports down when no session opened and no server answered (refused, timed out); it still
    sees the primary when a session opened or a server answered (even a refused login); anything else (no
    DSN, a host name that does not resolve) is no verdict. ``fenced`` passes the gate, the vote still reported.
    """
    if primary["reachable"] is False and primary["answered"] is False:
        ctrl_down = True
    elif primary["reachable"] or primary["answered"]:
        ctrl_down = False
    else:
        ctrl_down = None
    passed, detail, points = primary_down_quorum(ctrl_down, primary["detail"], confirmations, min_confirmations, secrets)
    if fenced:
        passed = True
        detail = "old primary declared fenced (fenced=true): the vote is not needed; " + detail
    return _gate("primary_down", passed, detail), points


def replica_state(conn):
    """Recovery and lag figures of a (candidate) server."""
    in_rec = bool(query_one(conn, "SELECT pg_is_in_recovery()")[0])
    out = dict(in_recovery=in_rec, receive_lsn=None, replay_lsn=None, lag_bytes=0, lag_seconds=0.0,
               replay_paused=False, timeline=None)
    if not in_rec:
        out["timeline"] = current_timeline(conn)
        return out
    row = query_one(conn, """
        SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,
               GREATEST(COALESCE(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0), 0)::bigint,
               CASE WHEN pg_last_wal_receive_lsn() IS DISTINCT FROM pg_last_wal_replay_lsn()
                         AND pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()
                    THEN EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8
                    ELSE 0 END,
               pg_is_wal_replay_paused(),
               (SELECT timeline_id FROM pg_control_checkpoint())""")
    out.update(receive_lsn=row[0], replay_lsn=row[1], lag_bytes=int(row[2]),
               lag_seconds=(None if row[3] is None else round(float(row[3]), 3)),
               replay_paused=bool(row[4]), timeline=int(row[5]))
    return out


def current_timeline(conn):
    """Timeline of a primary (from its current WAL file name; pg_control lags after a fast promote)."""
    row = query_one(conn, "SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END, "
                          "(SELECT timeline_id FROM pg_control_checkpoint())")
    if row[0]:
        return int(row[0][:8], 16)
    return int(row[1])


def validate_limits(max_lag_bytes, max_lag_seconds):
    if max_lag_bytes is None or int(max_lag_bytes) < 0:
        raise HAError("max_lag_bytes must be a non-negative number of bytes (got %r)" % (max_lag_bytes,))
    if max_lag_seconds is None or float(max_lag_seconds) < 0:
        raise HAError("max_lag_seconds must be a non-negative number of seconds (got %r)" % (max_lag_seconds,))


def _gate(name, passed, detail):
    return dict(name=name, passed=bool(passed), detail=detail)


def evaluate_gates(primary_dsn, candidate_dsn, confirmations=(), fenced=False, min_confirmations=1,
                   max_lag_bytes=DEFAULT_MAX_LAG_BYTES, max_lag_seconds=DEFAULT_MAX_LAG_SECONDS, timeout=5):
    """Evaluate every failover gate. Returns (gates, candidate_state, primary_probe).

    ``primary_down`` is decided by :func:`primary_down_quorum` (strict majority of the controller plus every
    entry of ``confirmations``, the controller among them, at least ``min_confirmations`` besides it), or
    passes with ``fenced``. ``primary_probe`` is the controller's probe of ``primary_dsn`` plus
    ``vantage_points`` (the per-vantage-point view, details masked).

    Raises HAError when the candidate cannot be reached (nothing can be decided without it), or when an entry
    of ``confirmations`` cannot be interpreted (named in the message).
    """
    validate_limits(max_lag_bytes, max_lag_seconds)
    secrets = dsn_secrets(primary_dsn, candidate_dsn)
    gates = []

    # primary_down: a strict majority of the vantage points (controller + confirmations), see primary_down_quorum.
    if primary_dsn:
        primary = probe(primary_dsn, timeout)
    else:
        primary = dict(reachable=None, answered=None, in_recovery=None, detail="no primary_dsn given")
    gate, primary["vantage_points"] = primary_down_gate(primary, confirmations, fenced, min_confirmations, secrets)
    gates.append(gate)

    # candidate_in_recovery
    try:
        conn = connect(candidate_dsn, timeout)
    except PGError as exc:
        raise HAError("cannot connect to candidate_dsn (%s): %s" % (describe_dsn(candidate_dsn), mask(_err_text(exc), secrets)))
    try:
        state = replica_state(conn)
    finally:
        conn.close()
    gates.append(_gate("candidate_in_recovery", state["in_recovery"],
                       "pg_is_in_recovery() = %s on %s" % ("true" if state["in_recovery"] else "false", describe_dsn(candidate_dsn))))

    # lag
    if state["in_recovery"]:
        ok_bytes = state["lag_bytes"] <= int(max_lag_bytes)
        ok_secs = state["lag_seconds"] is None or state["lag_seconds"] <= float(max_lag_seconds)
        detail = ("received-but-not-replayed %d bytes (limit %d), replay delay %s s (limit %s s); receive %s, replay %s%s"
                  % (state["lag_bytes"], int(max_lag_bytes),
                     "unknown" if state["lag_seconds"] is None else state["lag_seconds"], max_lag_seconds,
                     state["receive_lsn"], state["replay_lsn"], ", replay PAUSED" if state["replay_paused"] else ""))
        gates.append(_gate("lag", ok_bytes and ok_secs, detail))
    else:
        gates.append(_gate("lag", True, "candidate is not in recovery; no lag to measure"))
    return gates, state, primary


def _wait_writable(dsn, deadline):
    last = None
    while True:
        try:
            conn = connect(dsn, 5, autocommit=False)
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_is_in_recovery()")
                    if not cur.fetchone()[0]:
                        # BEGIN READ WRITE overrides default_transaction_read_only (maintenance mode).
                        cur.execute("ROLLBACK")
                        cur.execute("BEGIN READ WRITE")
                        cur.execute("CREATE TEMP TABLE mcp_failover_write_probe (x int)")
                        cur.execute("INSERT INTO mcp_failover_write_probe VALUES (1)")
                        conn.rollback()
                        return True, None
            finally:
                conn.close()
        except PGError as exc:
            last = _err_text(exc)
        if time.monotonic() > deadline:
            return False, last
        time.sleep(0.1)


def _wait_replayed(conn, deadline, settle=1.0):
    """True once the standby has replayed all it can of what it received: replay reached the received
    position, or stopped advancing for `settle` seconds (the received WAL may end inside a record that
    can never be replayed). False when the deadline passes first."""
    last, since = None, time.monotonic()
    while True:
        row = query(conn, "SELECT COALESCE(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0),"
                          " pg_last_wal_replay_lsn()::text")[0]
        behind, replayed = row[0], row[1]
        if behind is None or float(behind) <= 0:
            return True
        if replayed != last:
            last, since = replayed, time.monotonic()
        elif time.monotonic() - since >= settle:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def promote(primary_dsn, candidate_dsn, confirmations=(), fenced=False, min_confirmations=1,
            max_lag_bytes=DEFAULT_MAX_LAG_BYTES, max_lag_seconds=DEFAULT_MAX_LAG_SECONDS, force=False,
            wait_seconds=60, timeout=5, check_mode=False):
    """Gate, then promote the candidate. Returns a result dict (changed, failed, msg, gates, ...)."""
    started = time.monotonic()
    secrets = dsn_secrets(primary_dsn, candidate_dsn)
    gates, state, primary = evaluate_gates(primary_dsn, candidate_dsn, confirmations, fenced, min_confirmations,
                                           max_lag_bytes, max_lag_seconds, timeout)
    result = dict(changed=False, failed=False, gates=gates, vantage_points=primary["vantage_points"],
                  new_primary=describe_dsn(candidate_dsn),
                  timeline=state["timeline"], rpo_bytes=None, rpo_seconds=None, duration=0.0, forced=False,
                  already_promoted=False)

    if not state["in_recovery"]:
        # Idempotent rerun, unless the old primary also takes writes.
        if primary.get("reachable") and primary.get("in_recovery") is False:
            result.update(failed=True, msg="candidate %s is not in recovery AND the old primary %s accepts connections "
                          "outside recovery: two primaries (split brain); fence one before going on"
                          % (describe_dsn(candidate_dsn), describe_dsn(primary_dsn)))
            return result
        result.update(already_promoted=True,
                      msg="candidate %s is already a primary (timeline %s); nothing to do" % (describe_dsn(candidate_dsn), state["timeline"]))
        return result

    failing = [g for g in gates if not g["passed"]]
    result["rpo_bytes"] = state["lag_bytes"]
    result["rpo_seconds"] = state["lag_seconds"]
    if failing and not force:
        result.update(failed=True, msg="refusing to promote %s: gate(s) failed: %s (use force=true to override)"
                      % (describe_dsn(candidate_dsn), "; ".join("%s: %s" % (g["name"], g["detail"]) for g in failing)))
        return result
    result["forced"] = bool(failing)
    if check_mode:
        forced = " (forced past: %s)" % ", ".join(g["name"] for g in failing) if failing else ""
        result.update(changed=True, msg="would promote %s%s" % (describe_dsn(candidate_dsn), forced))
        return result

    t0 = time.monotonic()
    try:
        conn = connect(candidate_dsn, timeout)
        try:
            if state["replay_paused"]:
                # A promotion while replay is paused ends recovery without applying what was received (rows
                # lost): resume, and wait until everything received is replayed before promoting.
                query(conn, "SELECT pg_wal_replay_resume()")
                caught_up = _wait_replayed(conn, time.monotonic() + wait_seconds)
                result["replayed_before_promote"] = caught_up
                if not caught_up:
                    result.update(failed=True, msg="%s did not replay the WAL it had received within %s s; not promoted"
                                  % (describe_dsn(candidate_dsn), wait_seconds))
                    return result
            ok = query_one(conn, "SELECT pg_promote(true, %s)", (int(wait_seconds),))[0]
        finally:
            conn.close()
    except PGError as exc:
        result.update(failed=True, msg="pg_promote on %s failed: %s" % (describe_dsn(candidate_dsn), mask(_err_text(exc), secrets)))
        return result
    if not ok:
        result.update(failed=True, changed=True,
                      msg="pg_promote on %s did not finish within %s s" % (describe_dsn(candidate_dsn), wait_seconds))
        return result
    writable, last = _wait_writable(candidate_dsn, time.monotonic() + wait_seconds)
    promote_time = time.monotonic() - t0
    if not writable:
        result.update(failed=True, changed=True, msg="promoted %s but it does not accept writes after %s s: %s"
                      % (describe_dsn(candidate_dsn), wait_seconds, mask(last, secrets)))
        return result
    conn = connect(candidate_dsn, timeout)
    try:
        result["timeline"] = current_timeline(conn)
    finally:
        conn.close()
    result.update(changed=True, promote_duration=round(promote_time, 3), duration=round(time.monotonic() - started, 3),
                  msg="promoted %s to primary (timeline %s)%s" % (describe_dsn(candidate_dsn), result["timeline"],
                                                                  " FORCED past: %s" % ", ".join(g["name"] for g in failing) if failing else ""))
    return result


# --------------------------------------------------------------------------- rejoin

class Runner:
    """Runs argv lists, as ``os_user`` when we are root and it differs (no shell)."""

    def __init__(self, os_user=None, env=None):
        self.os_user = os_user
        self.env = env or {}
        self.log = []

    def run(self, argv, check=True, extra_env=None, timeout=600, secrets=(), detach=False):
        """``detach``: for a command that leaves a daemon behind (pg_ctl start). The daemon gets its own session and
        no stdin, so the end of the connection that ran the module (an SSH session, sudo's pty) does not end it."""
        env = dict(os.environ)
        env.update(self.env)
        env.update(extra_env or {})
        kwargs = {}
        if self.os_user and os.geteuid() == 0:
            import pwd
            pw = pwd.getpwnam(self.os_user)
            if pw.pw_uid != 0:
                kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
                env["HOME"] = pw.pw_dir
                env["USER"] = env["LOGNAME"] = self.os_user
        t0 = time.monotonic()
        if detach:
            kwargs.update(start_new_session=True, stdin=subprocess.DEVNULL)
        proc = subprocess.run(argv, cwd="/", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, check=False, **kwargs)
        out = proc.stdout.decode("utf-8", "replace")
        err = proc.stderr.decode("utf-8", "replace")
        self.log.append(dict(cmd=mask(" ".join(argv), secrets), rc=proc.returncode,
                             seconds=round(time.monotonic() - t0, 3)))
        if check and proc.returncode != 0:
            raise HAError("%s failed (rc %s): %s"
                          % (mask(" ".join(argv), secrets), proc.returncode, mask((err or out).strip()[-2000:], secrets)))
        return proc.returncode, out, err


def controldata(runner, bin_dir, data_dir):
    rc, out, err = runner.run([os.path.join(bin_dir, "pg_controldata"), "-D", data_dir], check=False)
    if rc != 0:
        raise HAError("pg_controldata -D %s failed: %s" % (data_dir, (err or out).strip()))
    data = {}
    for line in out.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            data[k.strip()] = v.strip()
    return data


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


def _norm_host(h):
    h = (h or "").strip()
    return "127.0.0.1" if h in ("localhost", "::1", "") else h


def receiver_state(dsn, timeout=5):
    """None when the node is not reachable; else dict(in_recovery, status, sender_host, sender_port, timeline)."""
    try:
        conn = connect(dsn, timeout)
    except PGError:
        return None
    try:
        in_rec = bool(query_one(conn, "SELECT pg_is_in_recovery()")[0])
        row = query_one(conn, "SELECT status, sender_host, sender_port, received_tli FROM pg_stat_wal_receiver") if in_rec else None
    finally:
        conn.close()
    if not row:
        return dict(in_recovery=in_rec, status=None, sender_host=None, sender_port=None, timeline=None)
    return dict(in_recovery=in_rec, status=row[0], sender_host=row[1], sender_port=row[2], timeline=row[3])


def follows(rstate, source_dsn):
    if not rstate or not rstate["in_recovery"] or rstate["status"] != "streaming":
        return False
    p = parse_dsn(source_dsn)
    return (_norm_host(rstate["sender_host"]) == _norm_host(p.get("host"))
            and int(rstate["sender_port"] or 0) == int(p.get("port", 5432)))


def _pg_running(runner, bin_dir, data_dir):
    rc, _out, _err = runner.run([os.path.join(bin_dir, "pg_ctl"), "-D", data_dir, "status"], check=False)
    return rc == 0


def _wait_follows(node_dsn, source_dsn, deadline, timeout):
    """The node's receiver state once it streams from the source; None when the deadline passes first."""
    while True:
        rstate = receiver_state(node_dsn, timeout)
        if follows(rstate, source_dsn):
            return rstate
        if time.monotonic() > deadline:
            return None
        time.sleep(0.2)


def rejoin(node_dsn, source_dsn, data_dir, port, bin_dir="/usr/lib/postgresql/15/bin", os_user="postgres",
           log_file=None, allow_reclone=False, replication_conninfo=None, wait_seconds=120, timeout=5,
           check_mode=False):
    """Turn the old primary (``data_dir``) into a streaming replica of ``source_dsn``."""
    started = time.monotonic()
    secrets = dsn_secrets(node_dsn, source_dsn, replication_conninfo)
    if not os.path.isdir(data_dir):
        raise HAError("data_dir %s does not exist" % data_dir)
    for tool in ("pg_ctl", "pg_rewind", "pg_controldata", "pg_basebackup"):
        if not os.access(os.path.join(bin_dir, tool), os.X_OK):
            raise HAError("%s not found in bin_dir %s" % (tool, bin_dir))
    runner = Runner(os_user)
    result = dict(changed=False, failed=False, method=None, steps=[], prerequisites={}, duration=0.0,
                  node=describe_dsn(node_dsn), source=describe_dsn(source_dsn))

    # The source must be a primary.
    try:
        conn = connect(source_dsn, timeout)
    except PGError as exc:
        raise HAError("cannot connect to the new primary (%s): %s" % (describe_dsn(source_dsn), mask(_err_text(exc), secrets)))
    try:
        src = replica_state(conn)
        if not src["in_recovery"] and not check_mode:
            # pg_rewind reads the source's timeline from pg_control, which a fast promotion updates only
            # at the next checkpoint: without one it says "no rewind required" and the node never streams.
            ctl_tli = int(query_one(conn, "SELECT timeline_id FROM pg_control_checkpoint()")[0])
            if ctl_tli != src["timeline"]:
                try:
                    query(conn, "CHECKPOINT")
                except PGError as exc:
                    raise HAError("the new primary %s needs a CHECKPOINT after promotion before pg_rewind, and it failed "
                                  "(superuser or pg_checkpoint role needed): %s"
                                  % (describe_dsn(source_dsn), mask(_err_text(exc), secrets)))
    finally:
        conn.close()
    if src["in_recovery"]:
        raise HAError("the new primary %s is still in recovery; promote it first" % describe_dsn(source_dsn))
    result["source_timeline"] = src["timeline"]

    rstate = receiver_state(node_dsn, timeout)
    if follows(rstate, source_dsn):
        result.update(msg="%s already streams from %s" % (describe_dsn(node_dsn), describe_dsn(source_dsn)),
                      timeline=rstate["timeline"])
        return result

    cd = controldata(runner, bin_dir, data_dir)
    checksums = cd.get("Data page checksum version", "0") not in ("0", "")
    hints = cd.get("wal_log_hints setting", "off") == "on"
    node_tli = int(cd.get("Latest checkpoint's TimeLineID", "0") or 0)
    state = cd.get("Database cluster state", "")
    prereq = dict(data_checksums=checksums, wal_log_hints=hints, node_timeline=node_tli, source_timeline=src["timeline"],
                  cluster_state=state, rewind_possible=checksums or hints)
    if node_tli > src["timeline"]:
        prereq["rewind_possible"] = False
        prereq["reason"] = "node timeline %s is ahead of the source's %s (wrong direction?)" % (node_tli, src["timeline"])
    elif not (checksums or hints):
        prereq["reason"] = "neither data checksums nor wal_log_hints is on: pg_rewind cannot run"
    result["prerequisites"] = prereq
    method = "rewind" if prereq["rewind_possible"] else ("reclone" if allow_reclone else None)
    if method is None:
        raise HAError("cannot rejoin %s: %s; set allow_reclone=true to clone it afresh with pg_basebackup"
                      % (data_dir, prereq.get("reason")))
    running = _pg_running(runner, bin_dir, data_dir)
    # A stopped standby (standby.signal), e.g. a rejoin interrupted after its rewind whose start failed, is first
    # started as it is: if it streams from the source, that is the rejoin. Rewinding it again would fail (a rewound
    # target left "in archive recovery" was not shut down cleanly). If it does not stream, it is stopped and rewound.
    resumable = not running and os.path.exists(os.path.join(data_dir, "standby.signal")) and state != "in production"
    plan = (["stop"] if running else []) + (["resume"] if resumable else []) + [method, "start", "wait_streaming"]
    if check_mode:
        result.update(changed=True, method=method, steps=plan,
                      msg="would rejoin %s to %s by %s (steps: %s)" % (data_dir, describe_dsn(source_dsn), method, ", ".join(plan)))
        return result

    pg_ctl = os.path.join(bin_dir, "pg_ctl")
    start_argv = [pg_ctl, "-D", data_dir, "-o", "-p %d" % int(port), "-w", "-t", str(int(wait_seconds))]
    if log_file:
        start_argv += ["-l", log_file]
    start_argv.append("start")
    steps = []
    if resumable:
        rc, _out, err = runner.run(start_argv, check=False, secrets=secrets, detach=True)
        rstate = _wait_follows(node_dsn, source_dsn, time.monotonic() + min(wait_seconds, 20), timeout) if rc == 0 else None
        if rstate:
            result["commands"] = runner.log
            result.update(changed=True, method="resume", steps=["resume", "streaming"], timeline=rstate["timeline"],
                          duration=round(time.monotonic() - started, 3),
                          msg="%s rejoined as a replica of %s by resume (started as the standby it already was)"
                          % (data_dir, describe_dsn(source_dsn)))
            return result
        result["resume_error"] = mask((err or "started but did not stream from the source").strip()[-500:], secrets)
        runner.run([pg_ctl, "-D", data_dir, "-m", "fast", "-w", "stop"], check=False, secrets=secrets)
        steps.append("resume failed")
    if running:
        runner.run([pg_ctl, "-D", data_dir, "-m", "fast", "-w", "stop"], secrets=secrets)
        steps.append("stop")
    conninfo, password = split_password(source_dsn)
    env = {"PGPASSWORD": password} if password else {}
    t0 = time.monotonic()
    if method == "rewind":
        rc, out, err = runner.run([os.path.join(bin_dir, "pg_rewind"), "--target-pgdata=" + data_dir,
                                   "--source-server=" + conninfo, "-R"], check=False, extra_env=env, secrets=secrets)
        if rc != 0:
            if not allow_reclone:
                raise HAError("pg_rewind failed (rc %s): %s; set allow_reclone=true to fall back to pg_basebackup"
                              % (rc, mask((err or out).strip()[-1500:], secrets)))
            result["rewind_error"] = mask((err or out).strip()[-1500:], secrets)
            method = "reclone"
        else:
            steps.append("rewind")
            result["rewind_output"] = mask((err or out).strip()[-500:], secrets)
    if method == "reclone":
        aside = "%s.rejoin-%s" % (data_dir.rstrip("/"), time.strftime("%Y%m%dT%H%M%S"))
        os.rename(data_dir, aside)
        result["moved_aside"] = aside
        os.mkdir(data_dir, 0o700)
        st = os.stat(aside)
        os.chown(data_dir, st.st_uid, st.st_gid)
        runner.run([os.path.join(bin_dir, "pg_basebackup"), "-D", data_dir, "-d", conninfo, "-R", "-X", "stream",
                    "-c", "fast"], extra_env=env, secrets=secrets)
        steps.append("reclone")
    result["method"] = method
    result["sync_duration"] = round(time.monotonic() - t0, 3)
    if replication_conninfo:
        auto = os.path.join(data_dir, "postgresql.auto.conf")
        with open(auto, "a") as fh:
            fh.write("primary_conninfo = '%s'\n" % replication_conninfo.replace("'", "''"))
        steps.append("primary_conninfo")
    runner.run(start_argv, secrets=secrets, detach=True)
    steps.append("start")
    rstate = _wait_follows(node_dsn, source_dsn, time.monotonic() + wait_seconds, timeout)
    if not rstate:
        raise HAError("%s started but does not stream from %s after %s s (receiver: %s)"
                      % (data_dir, describe_dsn(source_dsn), wait_seconds, receiver_state(node_dsn, timeout)))
    steps.append("streaming")
    result["commands"] = runner.log
    result.update(changed=True, steps=steps, timeline=rstate["timeline"], duration=round(time.monotonic() - started, 3),
                  msg="%s rejoined as a replica of %s by %s" % (data_dir, describe_dsn(source_dsn), method))
    return result


# --------------------------------------------------------------------------- read-only (maintenance)

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
            raise HAError("default_transaction_read_only did not become %s after pg_reload_conf()" % ("on" if enabled else "off"))
        time.sleep(0.05)
    return True


def pg_error_text(exc, *dsns):
    return mask(_err_text(exc), dsn_secrets(*dsns))
