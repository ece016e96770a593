"""The collection's own playbooks on the lab's hosts, run by `make lab-up` after the machines are up: the node role
on every managed node (the lab's first step on a fresh host), then the platform's deploy on the MCP hosts.

Each runs from the installed tarball (ANSIBLE_COLLECTIONS_PATH, set by the Makefile) with the JSON callback; the
whole output is kept in .lab/logs/, and a failure ends in one line per host naming the task and the cause.
"""
import json
import os
import subprocess
import time

from .common import INVENTORY, ROOT, VENV, LabError, log, path

STAGES = [("node role", "mcp.platform.node"), ("deploy", "mcp.platform.deploy")]


def run_playbook(what, playbook):
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_CONFIG=os.environ.get("ANSIBLE_CONFIG", os.path.join(ROOT, "ansible.cfg")))
    env.pop("ANSIBLE_PYTHON_INTERPRETER", None)
    out = path("logs", "provision-%s.json" % playbook.rsplit(".", 1)[-1])
    t0 = time.time()
    with open(out, "w") as f:
        res = subprocess.run([os.path.join(VENV, "bin", "ansible-playbook"), "-i", INVENTORY, playbook], cwd=ROOT,
                             env=env, stdout=f, stderr=subprocess.PIPE, text=True)
    took = time.time() - t0
    try:
        with open(out) as f:
            text = f.read()
        report = json.loads(text[text.index("{"):])
    except ValueError:
        raise LabError("%s (%s) printed no result (rc %d): %s" % (what, playbook, res.returncode,
                                                                  (res.stderr or "").strip().splitlines()[-1:]))
    failures = []
    for play in report.get("plays", []):
        for task in play.get("tasks", []):
            for host, r in task.get("hosts", {}).items():
                if (r.get("failed") or r.get("unreachable")) and not r.get("ignore_errors") and not r.get("skip_reason"):
                    reason = r.get("msg") or r.get("stderr") or "failed"
                    if isinstance(reason, list):
                        reason = " ".join(str(x) for x in reason)
                    failures.append((host, task["task"]["name"], " ".join(str(reason).split())[:300]))
    stats = report.get("stats", {})
    if res.returncode != 0 or failures:
        seen = set()
        lines = []
        for host, task, reason in failures:
            if host not in seen:
                seen.add(host)
                lines.append("%s: %s failed in '%s': %s" % (host, what, task, reason))
        raise LabError("; ".join(lines) or "%s (%s) failed (rc %d); see %s" % (what, playbook, res.returncode, out))
    changed = sum(s.get("changed", 0) for s in stats.values())
    log("%-12s %d hosts ok, %d changes, in %.0f s (%s)" % (what, len(stats), changed, took, out))
    return changed > 0


def provision():
    changed = False
    for what, playbook in STAGES:
        changed |= run_playbook(what, playbook)
    return changed
