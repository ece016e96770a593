# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``gateway_errors`` check: the share of a gateway's answers that were 5xx, from its Prometheus metrics.

The update's post-cutover watch asks "did the new version make the gateway answer 5xx?". Traefik counts every answer
per service and code in ``traefik_service_requests_total``; this check reads that counter (Prometheus text format,
parsed here with the standard library), sums the named services, and - given the counters of an earlier run as
``baseline`` - judges the window in between. It replaces a Prometheus parser written in Jinja.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import socket
from http.client import HTTPException
from urllib.error import HTTPError, URLError
from urllib.request import HTTPSHandler, Request, build_opener

from ansible_collections.mcp.platform.plugins.module_utils.health.checks import result
from ansible_collections.mcp.platform.plugins.module_utils.health.network import MAX_BODY, net_reason, ssl_context

COUNTER = "traefik_service_requests_total"
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)(?:\s+\d+)?\s*$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text, name):
    """(labels dict, value) of every sample of metric ``name`` in Prometheus text exposition format."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line.strip())
        if not m or m.group("name") != name:
            continue
        try:
            value = float(m.group("value"))
        except ValueError:
            continue
        labels = dict((k, v.replace('\\"', '"').replace("\\\\", "\\")) for k, v in _LABEL.findall(m.group("labels") or ""))
        out.append((labels, value))
    return out


def answer_counts(text, services):
    """{"requests": all answers, "errors": 5xx answers} of the gateway services named (Traefik: ``<name>@<provider>``)."""
    wanted = set(services)
    requests = errors = 0.0
    for labels, value in samples(text, COUNTER):
        service = labels.get("service", "")
        if service not in wanted and service.split("@", 1)[0] not in wanted:
            continue
        requests += value
        if labels.get("code", "").startswith("5"):
            errors += value
    return {"requests": requests, "errors": errors}


def window(now, baseline):
    """Answers since ``baseline`` (counters of an earlier read); a counter that went down (gateway restarted) counts from 0."""
    if not baseline:
        return dict(now)
    if now["requests"] < baseline.get("requests", 0) or now["errors"] < baseline.get("errors", 0):
        return dict(now)
    return {"requests": now["requests"] - baseline.get("requests", 0), "errors": now["errors"] - baseline.get("errors", 0)}


def probe_gateway_errors(check):
    url = check["url"]
    opener = build_opener(HTTPSHandler(context=ssl_context(check["validate_certs"])))
    try:
        with opener.open(Request(url, headers={"User-Agent": "mcp.platform.mcp_health"}), timeout=check["timeout"]) as resp:
            text = resp.read(MAX_BODY * 8).decode("utf-8", "replace")
    except HTTPError as exc:
        return result("crit", "GET %s: HTTP %s" % (url, exc.code), url=url)
    except (URLError, socket.timeout, OSError, ValueError, HTTPException) as exc:
        return result("crit", "GET %s: %s" % (url, net_reason(exc, check["timeout"])), url=url)
    now = answer_counts(text, check["services"])
    win = window(now, check["baseline"])
    ratio = win["errors"] / max(win["requests"], 1.0)
    details = dict(url=url, services=check["services"], requests=now["requests"], errors=now["errors"],
                   window_requests=win["requests"], window_errors=win["errors"], ratio=round(ratio, 6))
    since = " since the baseline" if check["baseline"] else ""
    text = "%d of %d answers 5xx%s (limit %.2f%%)" % (win["errors"], win["requests"], since, check["max_ratio"] * 100)
    if win["errors"] > 0 and ratio > check["max_ratio"]:
        return result("crit", text, **details)
    return result("ok", text, **details)
