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


def interpret_confirmation(item):
    """A vantage-point result: bool, 'true'/'false', or a dict from a registered probe.

    Dicts: ``down`` (bool), ``reachable`` / ``is_available`` (negated), or ``failed`` (a probe
    that fails when the primary cannot be reached, e.g. ``wait_for`` with ``state: started``).
    Returns True (down), False (up) or raises HAError.
    """
    if isinstance(item, bool):
        return item
    if isinstance(item, str):
        low = item.strip().lower()
        if low in ("true", "yes", "down", "1"):
            return True
        if low in ("false", "no", "up", "0"):
            return False
    if isinstance(item, dict):
        for key, negate in (("down", False), ("reachable", True), ("is_available", True), ("failed", False)):
            if key in item:
                return (not bool(item[key])) if negate else bool(item[key])
    raise HAError("cannot interpret primary_down_confirmations item %r: use a boolean or a dict with "
                  "'down', 'reachable', 'is_available' or 'failed'" % (item if not isinstance(item, dict) else sorted(item),))


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

    Raises HAError when the candidate cannot be reached (nothing can be decided without it).
    """
    validate_limits(max_lag_bytes, max_lag_seconds)
    secrets = dsn_secrets(primary_dsn, candidate_dsn)
    gates = []

    # primary_down
    if primary_dsn:
        primary = probe(primary_dsn, timeout)
    else:
        primary = dict(reachable=None, answered=None, in_recovery=None, detail="no primary_dsn given")
    votes = [interpret_confirmation(c) for c in (confirmations or [])]
    ctrl_down = primary["reachable"] is False and primary["answered"] is False
    if fenced:
        passed = True
        detail = "old primary declared fenced (fenced=true); controller view: %s" % primary["detail"]
    else:
        others_ok = all(votes) and len(votes) >= int(min_confirmations)
        passed = ctrl_down and others_ok
        parts = ["controller: %s (%s)" % ("down" if ctrl_down else "NOT down", primary["detail"])]
        parts.append("other vantage points: %d of %d report down (at least %d required)"
                     % (sum(1 for v in votes if v), len(votes), int(min_confirmations)))
        detail = "; ".join(parts)
    gates.append(_gate("primary_down", passed, mask(detail, secrets)))

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
    result = dict(changed=False, failed=False, gates=gates, new_primary=describe_dsn(candidate_dsn),
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

    def run(self, argv, check=True, extra_env=None, timeout=600, secrets=()):
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
    plan = (["stop"] if running else []) + [method, "start", "wait_streaming"]
    if check_mode:
        result.update(changed=True, method=method, steps=plan,
                      msg="would rejoin %s to %s by %s (steps: %s)" % (data_dir, describe_dsn(source_dsn), method, ", ".join(plan)))
        return result

    pg_ctl = os.path.join(bin_dir, "pg_ctl")
    steps = []
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
    argv = [pg_ctl, "-D", data_dir, "-o", "-p %d" % int(port), "-w", "-t", str(int(wait_seconds))]
    if log_file:
        argv += ["-l", log_file]
    runner.run(argv + ["start"], secrets=secrets)
    steps.append("start")
    deadline = time.monotonic() + wait_seconds
    while True:
        rstate = receiver_state(node_dsn, timeout)
        if follows(rstate, source_dsn):
            break
        if time.monotonic() > deadline:
            raise HAError("%s started but does not stream from %s after %s s (receiver: %s)"
                          % (data_dir, describe_dsn(source_dsn), wait_seconds, rstate))
        time.sleep(0.2)
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
