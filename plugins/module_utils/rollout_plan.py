# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What each replica slot of a host needs (pure: the engine's container list in, a plan out), and the names and
addresses the plan uses. rollout.py carries the plan out."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json

from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError
from ansible_collections.mcp.platform.plugins.module_utils.platform import REPLICA_LABEL, SERVICE_LABEL, SPEC_LABEL, VERSION_LABEL

MODES = ("replace", "restart", "stop")


class RolloutError(PlatformError):
    """A slot failed a check: ``step`` names host, service, replica and version, ``check`` the gate."""

    def __init__(self, step, check, reason):
        self.step, self.check, self.reason = step, check, reason
        super(RolloutError, self).__init__("%s: check '%s' failed: %s" % (step, check, reason))


def _doing(p):
    mode = p.get("mode") or "replace"
    return "at %s" % p["version"] if mode == "replace" else mode


def _one_line(exc):
    return " ".join(str(exc).split())[:300]


def container_name(template, host, service, replica, version):
    return template.format(host=host, service=service, replica=replica, version=version)


def spec_digest(svc, p):
    """The digest of one service's container definition (label ``SPEC_LABEL``), as the module would create it.

    Only the definition goes in (image, environment, labels, port, volumes, restart policy), in a stable order,
    so the same parameters always give the same digest and a changed ``DATABASE_URL`` gives another one.
    """
    doc = {
        "image": svc["image"],
        "env": sorted(dict(p.get("env") or {}, MCP_SERVICE=svc["name"]).items()),
        "labels": sorted((svc.get("labels") or {}).items()),
        "bind_address": p["bind_address"],
        "container_port": p["container_port"],
        "volumes": sorted(p.get("volumes") or []),
        "restart_policy": p["restart_policy"],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def plan_slots(containers, services, replicas, version, mode="replace", specs=None):
    """What each (service, replica) slot needs, from the engine's container list (pure: unit-tested).

    ``containers``: dicts with ``Id``, ``Names``, ``State`` and ``Labels`` (the engine's list format).
    ``specs``: service -> ``spec_digest``; a container of ``version`` with another digest is replaced (one without a
    digest label, made before digests existed, too, so a first run converges it once).
    ``mode``: ``replace`` (a slot is done when a running container of ``version`` and the wanted digest holds it and
    nothing else does), ``restart`` (every existing replica of the services, whatever its number, is restarted in
    place: drained, stopped, started, gated), ``stop`` (every running replica is drained and stopped, nothing started).
    """
    specs = specs or {}
    slots = []
    if mode == "restart":
        for service in services:
            mine = [c for c in containers if (c.get("Labels") or {}).get(SERVICE_LABEL) == service]
            for c in sorted(mine, key=lambda c: (_replica_number(c), (c.get("Names") or [""])[0])):
                slots.append({"service": service, "replica": _replica_number(c), "have_new": True, "stale": [],
                              "old": [_brief(c)], "todo": True, "start": False, "in_place": True})
        return slots
    for service in services:
        for rep in range(1, replicas + 1):
            mine = [c for c in containers
                    if (c.get("Labels") or {}).get(SERVICE_LABEL) == service
                    and str((c.get("Labels") or {}).get(REPLICA_LABEL)) == str(rep)]
            if mode == "stop":
                running = [c for c in mine if c.get("State") in ("running", "restarting", "paused")]
                slots.append({"service": service, "replica": rep, "have_new": True, "stale": [],
                              "old": [_brief(c) for c in running], "todo": bool(running), "start": False})
                continue
            current = [c for c in mine if (c.get("Labels") or {}).get(VERSION_LABEL) == version
                       and (service not in specs or (c.get("Labels") or {}).get(SPEC_LABEL) == specs[service])]
            running = [c for c in current if c.get("State") == "running"]
            old = [c for c in mine if c not in current]
            # a stopped container of the version is replaced too: it is started fresh, not resumed
            stale = [c for c in current if c.get("State") != "running"] if not running else []
            slots.append({
                "service": service,
                "replica": rep,
                "have_new": bool(running),
                "stale": [_brief(c) for c in stale],
                "old": [_brief(c) for c in old],
                "todo": not running or bool(old),
                "start": not running,
            })
    return slots


def _replica_number(c):
    try:
        return int((c.get("Labels") or {}).get(REPLICA_LABEL))
    except (TypeError, ValueError):
        return 0


def _brief(c):
    names = c.get("Names") or [""]
    return {"id": c["Id"], "name": names[0].lstrip("/"), "state": c.get("State"),
            "version": (c.get("Labels") or {}).get(VERSION_LABEL), "url": published_url(c.get("Ports") or [])}


def published_url(ports, container_port=8080):
    """http://ip:port of ``container_port`` from the engine's list-format ports ('' when unpublished)."""
    for p in ports:
        if int(p.get("PrivatePort") or 0) == container_port and p.get("PublicPort"):
            ip = p.get("IP") or ""
            return "http://%s:%s" % (ip if ip not in ("", "0.0.0.0", "::") else "127.0.0.1", p["PublicPort"])
    return ""


def inspect_url(info, container_port=8080):
    """http://ip:port of ``container_port`` from ``inspect`` output ('' until the engine reports it)."""
    ports = ((info.get("NetworkSettings") or {}).get("Ports") or {}).get("%d/tcp" % container_port) or []
    for p in ports:
        if p.get("HostPort"):
            ip = p.get("HostIp") or ""
            return "http://%s:%s" % (ip if ip not in ("", "0.0.0.0", "::") else "127.0.0.1", p["HostPort"])
    return ""
