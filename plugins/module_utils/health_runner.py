# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run health checks concurrently, poll until healthy, and shape the summary (Nagios semantics).

Severity (worst first): crit > warn > unknown > ok.  ``unknown`` means "could
not be determined" (e.g. a client library is missing), which is worse than ok
but, unlike warn/crit, is not a statement about the target.  The Nagios codes
are the plugin API's: ok 0, warn 1, crit 2, unknown 3.

``fail_on``: ``crit`` fails on crit only; ``warn`` fails on anything not ok
(warn, crit, unknown); ``never`` never fails.  ``wait`` polls until nothing
would fail (with ``never``: until nothing is crit).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import time
from collections import deque

from ansible_collections.mcp.platform.plugins.module_utils.health.checks import check_secrets, probe_budget
from ansible_collections.mcp.platform.plugins.module_utils.health.probes import PROBES
from ansible_collections.mcp.platform.plugins.module_utils.secrets import mask_text, mask_value

SEVERITY = {"ok": 0, "unknown": 1, "warn": 2, "crit": 3}
NAGIOS_CODES = {"ok": 0, "warn": 1, "crit": 2, "unknown": 3}
FAIL_ON = ("crit", "warn", "never")


def run_check(check, probes=None):
    """Run one validated check; return its result dict (never raises)."""
    probes = probes or PROBES
    secrets = check_secrets(check)
    start = time.monotonic()
    try:
        res = probes[check["type"]](check)
    except Exception as exc:  # pylint: disable=broad-except  # a probe bug must not kill the other checks
        res = {"status": "unknown", "reason": "probe error: %s: %s" % (type(exc).__name__, exc), "details": {}}
    if not isinstance(res, dict):
        res = {"status": "unknown", "reason": "probe error: returned %s instead of a result" % type(res).__name__, "details": {}}
    latency = round((time.monotonic() - start) * 1000.0, 1)
    status = res.get("status") if res.get("status") in SEVERITY else "unknown"
    reason = " ".join(str(res.get("reason") or status).split())
    return {
        "name": check["name"],
        "type": check["type"],
        "status": status,
        "latency_ms": latency,
        "reason": mask_text(reason, secrets),
        "details": mask_value(res.get("details") or {}, secrets),
    }


def _hung_result(check, budget):
    return {"name": check["name"], "type": check["type"], "status": "crit", "latency_ms": round(budget * 1000.0, 1),
            "reason": "probe did not finish within %gs (timeout %gs)" % (budget, check["timeout"]), "details": {}}


def run_checks(checks, concurrency=16, probes=None):
    """Run ``checks`` on a pool of at most ``concurrency`` daemon threads; results keep the input order.

    Daemon threads (rather than concurrent.futures, whose workers are joined at
    interpreter exit) let a probe stuck in a library call be abandoned: it is
    reported crit once it exceeds its budget and a fresh worker takes its slot.
    """
    count = len(checks)
    results = [None] * count
    if not count:
        return results
    pending = deque(range(count))
    running = {}
    cond = threading.Condition()

    def worker():
        while True:
            with cond:
                if not pending:
                    return
                idx = pending.popleft()
                running[idx] = time.monotonic()
            res = run_check(checks[idx], probes)
            with cond:
                if results[idx] is not None:  # declared hung meanwhile; our slot was given away
                    return
                running.pop(idx, None)
                results[idx] = res
                cond.notify_all()

    def spawn():
        thread = threading.Thread(target=worker, name="mcp-health")
        thread.daemon = True
        thread.start()

    for _i in range(max(1, min(int(concurrency), count))):
        spawn()
    with cond:
        while any(r is None for r in results):
            cond.wait(0.05)
            now = time.monotonic()
            for idx, started in list(running.items()):
                budget = probe_budget(checks[idx])
                if now - started > budget:
                    running.pop(idx)
                    results[idx] = _hung_result(checks[idx], budget)
                    spawn()
    return results


def worst_status(results):
    worst = "ok"
    for res in results:
        if SEVERITY[res["status"]] > SEVERITY[worst]:
            worst = res["status"]
    return worst


def is_failing(status, fail_on):
    if fail_on == "never":
        return False
    if fail_on == "warn":
        return status != "ok"
    return status == "crit"


def failing_checks(results, fail_on):
    return [r for r in results if is_failing(r["status"], fail_on)]


def summarize(results):
    """Counts per status, total, worst status and a one-line text."""
    counts = dict((s, 0) for s in ("ok", "warn", "crit", "unknown"))
    for res in results:
        counts[res["status"]] += 1
    worst = worst_status(results)
    parts = []
    for status in ("ok", "warn", "crit", "unknown"):
        names = [r["name"] for r in results if r["status"] == status]
        part = "%d %s" % (counts[status], status)
        if status != "ok" and names:
            part += " (%s)" % ", ".join(names)
        parts.append(part)
    summary = dict(counts)
    summary["total"] = len(results)
    summary["status"] = worst
    summary["text"] = "%s - %d checks: %s" % (worst.upper(), len(results), ", ".join(parts))
    return summary


def failure_message(results, fail_on, timed_out=False, waited=None):
    bad = failing_checks(results, fail_on)
    lead = "%d of %d health checks failed" % (len(bad), len(results))
    if timed_out:
        lead = "timed out after %gs waiting for health; %d of %d checks stayed unhealthy" % (waited or 0, len(bad), len(results))
    return "%s (fail_on=%s): %s" % (lead, fail_on, "; ".join("%s: %s [%s]" % (r["name"], r["reason"], r["status"]) for r in bad))


def run_health(checks, concurrency=16, wait=False, wait_timeout=300.0, interval=5.0, fail_on="crit",
               probes=None, clock=time.monotonic, sleep=time.sleep):
    """Run the checks (polling when ``wait``); return the module result fields.

    With ``wait`` only the checks that are not yet acceptable are re-run each round.
    Returns a dict: checks, summary, status, nagios_code, failed_checks, attempts,
    elapsed_s, timed_out, failed (bool) and msg.
    """
    start = clock()
    wait_on = fail_on if fail_on != "never" else "crit"
    results = run_checks(checks, concurrency, probes)
    attempts = 1
    timed_out = False
    if wait:
        while True:
            todo = [i for i, r in enumerate(results) if is_failing(r["status"], wait_on)]
            if not todo:
                break
            remaining = wait_timeout - (clock() - start)
            if remaining <= 0:
                timed_out = True
                break
            sleep(max(0.0, min(interval, remaining)))
            if clock() - start >= wait_timeout:
                timed_out = True
                break
            rerun = run_checks([checks[i] for i in todo], concurrency, probes)
            attempts += 1
            for idx, res in zip(todo, rerun, strict=True):
                results[idx] = res
    elapsed = round(clock() - start, 3)
    summary = summarize(results)
    status = summary["status"]
    bad = failing_checks(results, fail_on)
    out = {
        "checks": results,
        "summary": summary,
        "status": status,
        "nagios_code": NAGIOS_CODES[status],
        "failed_checks": [r["name"] for r in bad],
        "attempts": attempts,
        "elapsed_s": elapsed,
        "timed_out": timed_out,
        "failed": bool(bad),
    }
    if bad:
        out["msg"] = failure_message(results, fail_on, timed_out, wait_timeout)
    elif timed_out:
        out["msg"] = "timed out after %gs waiting for health: %s" % (wait_timeout, summary["text"])
    else:
        out["msg"] = summary["text"]
    return out
