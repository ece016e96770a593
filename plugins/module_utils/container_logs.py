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

LEVEL_PATTERNS = {
    "error": re.compile(r"\b(ERROR|CRITICAL|FATAL|PANIC|Traceback)\b|\blevel=(error|fatal)\b|\"level\":\s*\"(error|fatal)\"", re.I),
    "warn": re.compile(r"\b(WARN|WARNING)\b|\blevel=warn(ing)?\b|\"level\":\s*\"warn(ing)?\"", re.I),
}


class LogsError(Exception):
    """Raised with a message fit for fail_json."""


def classify(line):
    """Return 'error', 'warn' or None for one log line."""
    if LEVEL_PATTERNS["error"].search(line):
        return "error"
    if LEVEL_PATTERNS["warn"].search(line):
        return "warn"
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
