# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mcp.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL rejoin: turn the old primary into a streaming replica of the new one, planned first, then applied.

A rejoin stops a server, rewinds or even moves its data folder aside, so what it will do must be visible before
it does it: :func:`plan_rejoin` only reads (the new primary, the node's WAL receiver, ``pg_controldata``,
``pg_ctl status``) and returns the ordered steps with their reasons; :func:`apply_rejoin` executes such a plan;
check mode is the plan alone. The decision itself (:func:`decide_rejoin`) is pure, so unit tests pin it without
a cluster. Connecting, DSNs and masking come from ``postgres.py``.

Terms: ``node_dsn`` is the old primary (the node on this host, ``data_dir``); ``source_dsn`` is the new primary it
is to follow.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import time

from ansible_collections.mcp.platform.plugins.module_utils.postgres import (
    DRIVER_ERRORS,
    connect,
    describe_dsn,
    dsn_secrets,
    error_text,
    parse_dsn,
    query,
    query_one,
    split_password,
)
from ansible_collections.mcp.platform.plugins.module_utils.postgres_failover import HAError, replica_state
from ansible_collections.mcp.platform.plugins.module_utils.secrets import mask_text

DEFAULT_BIN_DIR = "/usr/lib/postgresql/15/bin"
TOOLS = ("pg_ctl", "pg_rewind", "pg_controldata", "pg_basebackup")
# How long a resumed standby gets to stream before it is stopped and rewound.
RESUME_SECONDS = 20


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
        self.log.append(dict(cmd=mask_text(" ".join(argv), secrets), rc=proc.returncode,
                             seconds=round(time.monotonic() - t0, 3)))
        if check and proc.returncode != 0:
            raise HAError("%s failed (rc %s): %s" % (mask_text(" ".join(argv), secrets), proc.returncode,
                                                     mask_text((err or out).strip()[-2000:], secrets)))
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


def _norm_host(h):
    h = (h or "").strip()
    return "127.0.0.1" if h in ("localhost", "::1", "") else h


def receiver_state(dsn, timeout=5):
    """None when the node is not reachable; else dict(in_recovery, status, sender_host, sender_port, timeline)."""
    try:
        conn = connect(dsn, timeout)
    except DRIVER_ERRORS:
        return None
    try:
        in_rec = bool(query_one(conn, "SELECT pg_is_in_recovery()")[0])
        row = None
        if in_rec:
            row = query_one(conn, "SELECT status, sender_host, sender_port, received_tli FROM pg_stat_wal_receiver")
    finally:
        conn.close()
    if not row:
        return dict(in_recovery=in_rec, status=None, sender_host=None, sender_port=None, timeline=None)
    return dict(in_recovery=in_rec, status=row[0], sender_host=row[1], sender_port=row[2], timeline=row[3])


def follows(rstate, source_dsn):
    if not rstate or not rstate["in_recovery"] or rstate["status"] != "streaming":
        return False
    p = parse_dsn(source_dsn, "candidate_dsn")
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


# --------------------------------------------------------------------------- plan

def source_state(source_dsn, timeout=5, secrets=()):
    """The new primary's figures (``replica_state`` plus ``checkpoint_timeline``). Raises HAError unless it is one."""
    try:
        conn = connect(source_dsn, timeout)
    except DRIVER_ERRORS as exc:
        raise HAError("cannot connect to the new primary (%s): %s"
                      % (describe_dsn(source_dsn), mask_text(error_text(exc, source_dsn), secrets)))
    try:
        src = replica_state(conn)
        if not src["in_recovery"]:
            src["checkpoint_timeline"] = int(query_one(conn, "SELECT timeline_id FROM pg_control_checkpoint()")[0])
    finally:
        conn.close()
    if src["in_recovery"]:
        raise HAError("the new primary %s is still in recovery; promote it first" % describe_dsn(source_dsn))
    return src


def inspect_rejoin(node_dsn, source_dsn, data_dir, bin_dir=DEFAULT_BIN_DIR, runner=None, timeout=5, secrets=()):
    """What :func:`decide_rejoin` needs to know, read without changing anything.

    ``dict(source, receiver, following, controldata, running, standby_signal)``; the last three only when the
    node does not already stream from the source.
    """
    runner = runner or Runner()
    facts = dict(source=source_state(source_dsn, timeout, secrets), receiver=receiver_state(node_dsn, timeout))
    facts["following"] = follows(facts["receiver"], source_dsn)
    if not facts["following"]:
        facts["controldata"] = controldata(runner, bin_dir, data_dir)
        facts["running"] = _pg_running(runner, bin_dir, data_dir)
        facts["standby_signal"] = os.path.exists(os.path.join(data_dir, "standby.signal"))
    return facts


def _step(action, reason, changes=None, **extra):
    return dict(action=action, reason=reason, changes=changes, **extra)


def _node_state(facts):
    rstate = facts.get("receiver")
    cd = facts.get("controldata") or {}
    out = dict(reachable=rstate is not None, in_recovery=rstate["in_recovery"] if rstate else None,
               wal_receiver=rstate["status"] if rstate else None, sender=None,
               timeline=rstate["timeline"] if rstate else None, running=facts.get("running"),
               standby_signal=facts.get("standby_signal"), cluster_state=cd.get("Database cluster state"))
    if rstate and rstate.get("sender_host"):
        out["sender"] = "%s:%s" % (rstate["sender_host"], rstate["sender_port"])
    return out


def _running_as(facts):
    rstate = facts.get("receiver")
    if rstate is None:
        return "the server runs but does not accept connections from here"
    if not rstate["in_recovery"]:
        return "the server runs as a primary (it takes writes the new primary never sees)"
    return "the server runs as a standby that does not stream from the new primary (receiver: %s)" % (
        rstate["status"] or "none")


def decide_rejoin(facts, data_dir, allow_reclone=False, replication_conninfo=False, port=5432,
                  wait_seconds=120):
    """The rejoin decision from :func:`inspect_rejoin`'s facts (pure: no network, no files).

    Returns ``dict(needed, method, prerequisites, steps, node_state)``; ``steps`` are in order, each
    ``dict(action, reason, changes)`` (``rewind`` also ``fallback``). Actions: ``stop``, ``resume``,
    ``checkpoint_source``, ``rewind`` or ``reclone``, ``primary_conninfo``, ``start``, ``wait_streaming``.
    Raises HAError when the node cannot be rejoined (pg_rewind impossible and ``allow_reclone`` false).
    """
    src = facts["source"]
    out = dict(needed=False, method=None, prerequisites={}, steps=[], node_state=_node_state(facts))
    if facts.get("following"):
        return out
    cd = facts.get("controldata") or {}
    checksums = cd.get("Data page checksum version", "0") not in ("0", "")
    hints = cd.get("wal_log_hints setting", "off") == "on"
    node_tli = int(cd.get("Latest checkpoint's TimeLineID", "0") or 0)
    state = cd.get("Database cluster state", "")
    prereq = dict(data_checksums=checksums, wal_log_hints=hints, node_timeline=node_tli,
                  source_timeline=src["timeline"], cluster_state=state, rewind_possible=checksums or hints)
    if node_tli > src["timeline"]:
        prereq["rewind_possible"] = False
        prereq["reason"] = "node timeline %s is ahead of the source's %s (wrong direction?)" % (
            node_tli, src["timeline"])
    elif not (checksums or hints):
        prereq["reason"] = "neither data checksums nor wal_log_hints is on: pg_rewind cannot run"
    out["prerequisites"] = prereq
    method = "rewind" if prereq["rewind_possible"] else ("reclone" if allow_reclone else None)
    if method is None:
        raise HAError("cannot rejoin %s: %s; set allow_reclone=true to clone it afresh with pg_basebackup"
                      % (data_dir, prereq.get("reason")))
    running = bool(facts.get("running"))
    # A stopped standby (standby.signal), e.g. a rejoin interrupted after its rewind whose start failed, is first
    # started as it is: if it streams from the source, that is the rejoin. Rewinding it again would fail (a rewound
    # target left "in archive recovery" was not shut down cleanly). If it does not stream, it is stopped and rewound.
    resumable = not running and bool(facts.get("standby_signal")) and state != "in production"
    steps = []
    if running:
        tool = "pg_rewind" if method == "rewind" else "pg_basebackup"
        steps.append(_step("stop", "%s; %s needs it stopped" % (_running_as(facts), tool),
                           "pg_ctl stop -m fast on %s" % data_dir))
    if resumable:
        steps.append(_step("resume", "a stopped standby (standby.signal, cluster state %r): a rejoin interrupted after "
                           "its rewind is started as it is" % state,
                           "pg_ctl start on port %d; if it does not stream from the source within %d s it is stopped "
                           "and the next steps run" % (int(port), min(int(wait_seconds), RESUME_SECONDS))))
    if method == "rewind" and src.get("checkpoint_timeline") not in (None, src["timeline"]):
        steps.append(_step("checkpoint_source", "the new primary's pg_control still says timeline %s, its WAL is on "
                           "timeline %s (a fast promotion updates pg_control at the next checkpoint); pg_rewind reads "
                           "it and would find no rewind required" % (src["checkpoint_timeline"], src["timeline"]),
                           "CHECKPOINT on the new primary"))
    if method == "rewind":
        why = " and ".join(n for n, on in (("data checksums", checksums), ("wal_log_hints", hints)) if on)
        steps.append(_step("rewind", "%s on, node timeline %s, source timeline %s: pg_rewind can run"
                           % (why, node_tli, src["timeline"]),
                           "pg_rewind -R on %s: writes the old primary took after the fork are discarded, "
                           "standby.signal and primary_conninfo written" % data_dir,
                           fallback="reclone" if allow_reclone else None))
    else:
        steps.append(_step("reclone", "%s; allow_reclone=true" % prereq.get("reason"),
                           "%s moved aside to %s.rejoin-<timestamp> (never deleted), cloned afresh with "
                           "pg_basebackup -R" % (data_dir, data_dir.rstrip("/"))))
    if replication_conninfo:
        steps.append(_step("primary_conninfo", "replication_conninfo is given",
                           "primary_conninfo appended to %s" % os.path.join(data_dir, "postgresql.auto.conf")))
    steps.append(_step("start", "the node runs again, now as a standby of the source",
                       "pg_ctl start on port %d" % int(port)))
    steps.append(_step("wait_streaming", "the rejoin is done when the node streams from the source",
                       "none (waits up to %d s)" % int(wait_seconds)))
    out.update(needed=True, method=method, steps=steps)
    return out


def plan_rejoin(node_dsn, source_dsn, data_dir, port, bin_dir=DEFAULT_BIN_DIR, os_user="postgres", log_file=None,
                allow_reclone=False, replication_conninfo=None, wait_seconds=120, timeout=5, runner=None):
    """Inspect and decide, changing nothing. Returns the plan :func:`apply_rejoin` executes.

    ``dict(needed, method, steps, prerequisites, node_state, node, source, source_timeline, options, msg)``;
    ``options`` are the settings the steps run with (no secrets: the DSNs and ``replication_conninfo`` are given to
    :func:`apply_rejoin` again). Raises HAError when the node cannot be rejoined, naming why.
    """
    secrets = dsn_secrets(node_dsn, source_dsn, replication_conninfo)
    if not os.path.isdir(data_dir):
        raise HAError("data_dir %s does not exist" % data_dir)
    for tool in TOOLS:
        if not os.access(os.path.join(bin_dir, tool), os.X_OK):
            raise HAError("%s not found in bin_dir %s" % (tool, bin_dir))
    runner = runner or Runner(os_user)
    facts = inspect_rejoin(node_dsn, source_dsn, data_dir, bin_dir, runner, timeout, secrets)
    plan = decide_rejoin(facts, data_dir, allow_reclone, bool(replication_conninfo), port, wait_seconds)
    plan.update(node=describe_dsn(node_dsn), source=describe_dsn(source_dsn),
                source_timeline=facts["source"]["timeline"],
                options=dict(data_dir=data_dir, port=int(port), bin_dir=bin_dir, os_user=os_user, log_file=log_file,
                             allow_reclone=bool(allow_reclone), replication_conninfo=bool(replication_conninfo),
                             wait_seconds=int(wait_seconds), timeout=timeout))
    if plan["needed"]:
        plan["msg"] = "would rejoin %s to %s by %s (steps: %s)" % (
            data_dir, plan["source"], plan["method"], ", ".join(s["action"] for s in plan["steps"]))
    else:
        plan["msg"] = "%s already streams from %s" % (plan["node"], plan["source"])
    return plan


def plan_result(plan, started=None):
    """The module result of a plan that is not applied (check mode): what would be done, and the plan."""
    result = dict(changed=plan["needed"], failed=False, method=plan["method"],
                  steps=[s["action"] for s in plan["steps"]], prerequisites=plan["prerequisites"],
                  duration=round(time.monotonic() - started, 3) if started else 0.0, node=plan["node"],
                  source=plan["source"], source_timeline=plan["source_timeline"], plan=plan, msg=plan["msg"])
    if not plan["needed"]:
        result["timeline"] = plan["node_state"]["timeline"]
    return result


# --------------------------------------------------------------------------- apply

def _checkpoint_source(source_dsn, timeout, secrets):
    try:
        conn = connect(source_dsn, timeout)
        try:
            query(conn, "CHECKPOINT")
        finally:
            conn.close()
    except DRIVER_ERRORS as exc:
        raise HAError("the new primary %s needs a CHECKPOINT after promotion before pg_rewind, and it failed "
                      "(superuser or pg_checkpoint role needed): %s"
                      % (describe_dsn(source_dsn), mask_text(error_text(exc, source_dsn), secrets)))


def _reclone(runner, o, conninfo, env, result, secrets):
    data_dir = o["data_dir"]
    aside = "%s.rejoin-%s" % (data_dir.rstrip("/"), time.strftime("%Y%m%dT%H%M%S"))
    os.rename(data_dir, aside)
    result["moved_aside"] = aside
    os.mkdir(data_dir, 0o700)
    st = os.stat(aside)
    os.chown(data_dir, st.st_uid, st.st_gid)
    runner.run([os.path.join(o["bin_dir"], "pg_basebackup"), "-D", data_dir, "-d", conninfo, "-R", "-X", "stream",
                "-c", "fast"], extra_env=env, secrets=secrets)


def apply_rejoin(plan, node_dsn, source_dsn, replication_conninfo=None, runner=None, started=None):
    """Execute a :func:`plan_rejoin` plan, step by step. Returns the module result (the plan under ``plan``).

    ``steps`` in the result are the steps taken: ``resume failed``, ``stop``, ``checkpoint_source``, ``rewind`` or
    ``reclone`` (a failed rewind falls back to ``reclone`` when the plan allows it), ``primary_conninfo``,
    ``start``, ``streaming``; a resume that streams ends the rejoin (``resume``, ``streaming``).
    """
    started = started or time.monotonic()
    o = plan["options"]
    data_dir, timeout, wait_seconds = o["data_dir"], o["timeout"], o["wait_seconds"]
    secrets = dsn_secrets(node_dsn, source_dsn, replication_conninfo)
    runner = runner or Runner(o["os_user"])
    result = plan_result(plan)
    result.update(changed=False, steps=[])
    if not plan["needed"]:
        return result
    result.pop("timeline", None)
    pg_ctl = os.path.join(o["bin_dir"], "pg_ctl")
    stop_argv = [pg_ctl, "-D", data_dir, "-m", "fast", "-w", "stop"]
    start_argv = [pg_ctl, "-D", data_dir, "-o", "-p %d" % int(o["port"]), "-w", "-t", str(int(wait_seconds))]
    if o["log_file"]:
        start_argv += ["-l", o["log_file"]]
    start_argv.append("start")
    conninfo, password = split_password(source_dsn)
    env = {"PGPASSWORD": password} if password else {}
    steps, method, rstate = [], plan["method"], None
    for step in plan["steps"]:
        action = step["action"]
        if action == "stop":
            runner.run(stop_argv, secrets=secrets)
            steps.append("stop")
        elif action == "resume":
            rc, _out, err = runner.run(start_argv, check=False, secrets=secrets, detach=True)
            deadline = time.monotonic() + min(wait_seconds, RESUME_SECONDS)
            rstate = _wait_follows(node_dsn, source_dsn, deadline, timeout) if rc == 0 else None
            if rstate:
                result["commands"] = runner.log
                result.update(changed=True, method="resume", steps=["resume", "streaming"], timeline=rstate["timeline"],
                              duration=round(time.monotonic() - started, 3),
                              msg="%s rejoined as a replica of %s by resume (started as the standby it already was)"
                              % (data_dir, describe_dsn(source_dsn)))
                return result
            result["resume_error"] = mask_text((err or "started but did not stream from the source").strip()[-500:],
                                               secrets)
            runner.run(stop_argv, check=False, secrets=secrets)
            steps.append("resume failed")
        elif action == "checkpoint_source":
            _checkpoint_source(source_dsn, timeout, secrets)
            steps.append("checkpoint_source")
        elif action in ("rewind", "reclone"):
            t0 = time.monotonic()
            if action == "rewind":
                rc, out, err = runner.run([os.path.join(o["bin_dir"], "pg_rewind"), "--target-pgdata=" + data_dir,
                                           "--source-server=" + conninfo, "-R"], check=False, extra_env=env,
                                          secrets=secrets)
                text = mask_text((err or out).strip(), secrets)
                if rc != 0:
                    if step.get("fallback") != "reclone":
                        raise HAError("pg_rewind failed (rc %s): %s; set allow_reclone=true to fall back to "
                                      "pg_basebackup" % (rc, text[-1500:]))
                    result["rewind_error"] = text[-1500:]
                    action = "reclone"
                else:
                    result["rewind_output"] = text[-500:]
            if action == "reclone":
                _reclone(runner, o, conninfo, env, result, secrets)
            method = action
            steps.append(action)
            result["sync_duration"] = round(time.monotonic() - t0, 3)
        elif action == "primary_conninfo":
            if not replication_conninfo:
                raise HAError("the plan writes primary_conninfo but no replication_conninfo was given to apply it")
            with open(os.path.join(data_dir, "postgresql.auto.conf"), "a") as fh:
                fh.write("primary_conninfo = '%s'\n" % replication_conninfo.replace("'", "''"))
            steps.append("primary_conninfo")
        elif action == "start":
            runner.run(start_argv, secrets=secrets, detach=True)
            steps.append("start")
        elif action == "wait_streaming":
            rstate = _wait_follows(node_dsn, source_dsn, time.monotonic() + wait_seconds, timeout)
            if not rstate:
                raise HAError("%s started but does not stream from %s after %s s (receiver: %s)"
                              % (data_dir, describe_dsn(source_dsn), wait_seconds, receiver_state(node_dsn, timeout)))
            steps.append("streaming")
        else:
            raise HAError("unknown rejoin step %r in the plan" % (action,))
    result["commands"] = runner.log
    result.update(changed=True, method=method, steps=steps, duration=round(time.monotonic() - started, 3),
                  msg="%s rejoined as a replica of %s by %s" % (data_dir, describe_dsn(source_dsn), method))
    if rstate:
        result["timeline"] = rstate["timeline"]
    return result


def rejoin(node_dsn, source_dsn, data_dir, port, bin_dir=DEFAULT_BIN_DIR, os_user="postgres",
           log_file=None, allow_reclone=False, replication_conninfo=None, wait_seconds=120, timeout=5,
           check_mode=False):
    """Turn the old primary (``data_dir``) into a streaming replica of ``source_dsn``: plan, then (unless
    ``check_mode``) apply. Returns the module result, the plan under ``plan``."""
    started = time.monotonic()
    runner = Runner(os_user)
    plan = plan_rejoin(node_dsn, source_dsn, data_dir, port, bin_dir=bin_dir, os_user=os_user, log_file=log_file,
                       allow_reclone=allow_reclone, replication_conninfo=replication_conninfo,
                       wait_seconds=wait_seconds, timeout=timeout, runner=runner)
    if check_mode:
        return plan_result(plan, started)
    return apply_rejoin(plan, node_dsn, source_dsn, replication_conninfo, runner=runner, started=started)
