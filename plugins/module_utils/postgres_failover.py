# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mcp.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL failover: is the old primary down (the vantage-point vote), may the candidate be promoted, promote it.

A promotion is irreversible and two primaries lose data, so the decision is made of named gates (``primary_down``,
``candidate_in_recovery``, ``lag``), each reported with its reason, and the vote is pure (no network) so the unit
tests pin every rule. Connecting, DSNs and masking come from ``postgres.py``; turning the old primary into a replica
afterwards is ``postgres_rejoin.py``.

Terms: ``primary_dsn`` is the old primary (probed for "down" before a promotion); ``candidate_dsn`` is the replica
that is promoted.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.mcp.platform.plugins.module_utils.postgres import (
    DRIVER_ERRORS,
    PostgresError,
    connect,
    describe_dsn,
    dsn_secrets,
    error_text,
    query,
    query_one,
)
from ansible_collections.mcp.platform.plugins.module_utils.secrets import mask_text

DEFAULT_MAX_LAG_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_LAG_SECONDS = 30.0

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
_NAME_RESOLUTION = ("could not translate host name", "name or service not known",
                    "temporary failure in name resolution")


class HAError(PostgresError):
    """A failover or rejoin failure, with a message that is safe to show (already masked).

    It derives from ``PostgresError`` (and so ``PlatformError``): catch ``PostgresError`` to have both this and the
    connection/DSN errors ``postgres.py`` raises.
    """


def probe(dsn, timeout=5):
    """Try to reach a server. Returns dict(reachable, answered, in_recovery, detail).

    ``reachable`` is True when a session opened; ``answered`` is True when a server process
    answered at all (a refused login still proves the server is alive).
    """
    try:
        conn = connect(dsn, timeout)
    except DRIVER_ERRORS as exc:
        text = error_text(exc, dsn)
        low = text.lower()
        if any(k in low for k in _NAME_RESOLUTION):
            return dict(reachable=False, answered=None, in_recovery=None,
                        detail="host name could not be resolved (check the DSN): %s" % text)
        answered = any(k in low for k in _ANSWERED)
        return dict(reachable=False, answered=answered, in_recovery=None, detail=text)
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
                  "point that could not be asked); it has %s"
                  % (", ".join(repr(k) for k in sorted(item, key=str)) or "no keys"))


def _describe_item(item):
    # Keys only for dicts: a registered result may hold anything.
    return ("dict with keys %s" % sorted(str(k) for k in item)) if isinstance(item, dict) else repr(item)


def interpret_confirmation(item):
    """One entry of ``primary_down_confirmations``: True (down), False (still sees the primary), None (not asked).

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
            raise HAError("primary_down_confirmations item %d: 'name' must be a non-empty string (got %r)"
                          % (index, item["name"]))
        name = item["name"].strip()
    try:
        verdict, detail = _verdict(item)
    except HAError as exc:
        raise HAError("cannot interpret primary_down_confirmations item %d (%s, %s): %s"
                      % (index, name, _describe_item(item), exc))
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
                          % (index, point["name"], "as the controller" if first == 0 else "also item %d" % first,
                             CONTROLLER))
        seen[point["name"]] = index
        points.append(point)
    for point in points:
        point["detail"] = mask_text(point["detail"], secrets)

    def names(st):
        return [p["name"] for p in points if p["status"] == st]

    down, up, unknown = names("down"), names("up"), names("unknown")
    total, majority = len(points), len(points) // 2 + 1
    others_down = len(down) - (1 if points[0]["down"] else 0)
    passed = len(down) >= majority and points[0]["down"] and others_down >= min_confirmations
    parts = ["%d of %d vantage points report the primary down (a majority, %d, is required)"
             % (len(down), total, majority)]
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
    return bool(passed), mask_text("; ".join(parts), secrets), points


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
    passed, detail, points = primary_down_quorum(ctrl_down, primary["detail"], confirmations, min_confirmations,
                                                 secrets)
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
    row = query_one(conn, "SELECT CASE WHEN pg_is_in_recovery() THEN NULL "
                          "ELSE pg_walfile_name(pg_current_wal_lsn()) END, "
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
    except DRIVER_ERRORS as exc:
        raise HAError("cannot connect to candidate_dsn (%s): %s"
                      % (describe_dsn(candidate_dsn), error_text(exc, primary_dsn, candidate_dsn)))
    try:
        state = replica_state(conn)
    finally:
        conn.close()
    gates.append(_gate("candidate_in_recovery", state["in_recovery"], "pg_is_in_recovery() = %s on %s"
                       % ("true" if state["in_recovery"] else "false", describe_dsn(candidate_dsn))))

    # lag
    if state["in_recovery"]:
        ok_bytes = state["lag_bytes"] <= int(max_lag_bytes)
        ok_secs = state["lag_seconds"] is None or state["lag_seconds"] <= float(max_lag_seconds)
        detail = ("received-but-not-replayed %d bytes (limit %d), replay delay %s s (limit %s s); "
                  "receive %s, replay %s%s"
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
        except DRIVER_ERRORS as exc:
            last = error_text(exc, dsn)
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
        result.update(already_promoted=True, msg="candidate %s is already a primary (timeline %s); nothing to do"
                      % (describe_dsn(candidate_dsn), state["timeline"]))
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
    except DRIVER_ERRORS as exc:
        result.update(failed=True, msg="pg_promote on %s failed: %s"
                      % (describe_dsn(candidate_dsn), error_text(exc, primary_dsn, candidate_dsn)))
        return result
    if not ok:
        result.update(failed=True, changed=True,
                      msg="pg_promote on %s did not finish within %s s" % (describe_dsn(candidate_dsn), wait_seconds))
        return result
    writable, last = _wait_writable(candidate_dsn, time.monotonic() + wait_seconds)
    promote_time = time.monotonic() - t0
    if not writable:
        result.update(failed=True, changed=True, msg="promoted %s but it does not accept writes after %s s: %s"
                      % (describe_dsn(candidate_dsn), wait_seconds, mask_text(last, secrets)))
        return result
    conn = connect(candidate_dsn, timeout)
    try:
        result["timeline"] = current_timeline(conn)
    finally:
        conn.close()
    forced = " FORCED past: %s" % ", ".join(g["name"] for g in failing) if failing else ""
    result.update(changed=True, promote_duration=round(promote_time, 3), duration=round(time.monotonic() - started, 3),
                  msg="promoted %s to primary (timeline %s)%s"
                  % (describe_dsn(candidate_dsn), result["timeline"], forced))
    return result
