# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recent error and warning lines from the platform's containers (the manual's `mcp logs --level error --since 24h`).

community.docker has no module that reads logs; we read them through the Docker API (Docker Engine or
Podman's compatible service) with the docker SDK and classify each line by its level word.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError

# The first upper-case level word of a line decides (so "INFO uvicorn.error: started" is not an error);
# structured fields (level=error, "level": "warn") next; a bare Traceback line counts as an error.
LEVEL_WORD = re.compile(r"\b(DEBUG|TRACE|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRITICAL|CRIT|FATAL|PANIC|ALERT|EMERG)\b")
LEVEL_FIELD = re.compile(r"""\blevel["']?\s*[=:]\s*["']?(debug|trace|info|notice|warn|warning|error|err|critical|crit|fatal|panic)\b""", re.I)
SEVERITY = {"WARN": "warn", "WARNING": "warn", "ERROR": "error", "ERR": "error", "CRITICAL": "error", "CRIT": "error",
            "FATAL": "error", "PANIC": "error", "ALERT": "error", "EMERG": "error"}


class LogsError(PlatformError):
    """Raised with a message fit for fail_json."""


def classify(line):
    """Return 'error', 'warn' or None for one log line."""
    field = LEVEL_FIELD.search(line)
    if field:
        return SEVERITY.get(field.group(1).upper())
    word = LEVEL_WORD.search(line)
    if word:
        return SEVERITY.get(word.group(1))
    if line.lstrip().startswith("Traceback (most recent call last)"):
        return "error"
    return None


def scan_lines(lines, levels=("error", "warn")):
    """Count classified lines and keep them in order; `lines` are (container, text) pairs."""
    counts = {lvl: 0 for lvl in levels}
    kept = []
    for container, text in lines:
        lvl = classify(text)
        if lvl in counts:
            counts[lvl] += 1
            kept.append({"container": container, "level": lvl, "line": text})
    return counts, kept


def read_recent_lines(client, label_filters, since_seconds, now=None):
    """Yield (container name, line) from every container matching the labels, oldest first per container."""
    now = now or time.time()
    since = int(now - since_seconds)
    try:
        containers = client.containers.list(all=True, filters={"label": list(label_filters)})
    except Exception as e:  # the SDK raises many types; all mean "could not ask the engine"
        raise LogsError("could not list containers through the Docker API: %s" % e)
    names = []
    out = []
    for ctr in sorted(containers, key=lambda c: c.name):
        names.append(ctr.name)
        try:
            raw = ctr.logs(stdout=True, stderr=True, since=since, timestamps=False)
        except Exception as e:
            raise LogsError("could not read the logs of %s: %s" % (ctr.name, e))
        for line in raw.decode("utf-8", "replace").splitlines():
            if line.strip():
                out.append((ctr.name, line.rstrip()))
    return names, out


def recent_problems(client, label_filters, since_seconds=86400, last=20, levels=("error", "warn")):
    names, lines = read_recent_lines(client, label_filters, since_seconds)
    counts, kept = scan_lines(lines, levels)
    return {"containers": names, "counts": counts, "total": sum(counts.values()), "last": kept[-last:] if last else []}
