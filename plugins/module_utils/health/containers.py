# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container-engine probes: container (replica state, restarts, a direct probe of each replica) and logs.

Both find the platform's containers by the contract's labels (``platform.py``) and talk to the engine (Docker
Engine or Podman's compatible service) through ``platform.docker_client``; the docker SDK is imported on first
use, so checks of other types never load it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import os
import threading
import time
from urllib.error import HTTPError
from urllib.request import Request, build_opener

from ansible_collections.mcp.platform.plugins.module_utils.container_logs import LogsError, recent_problems
from ansible_collections.mcp.platform.plugins.module_utils.health.checks import lib, result
from ansible_collections.mcp.platform.plugins.module_utils.node_requirements import not_installed_reason
from ansible_collections.mcp.platform.plugins.module_utils.platform import (
    HOST_LABEL,
    REPLICA_LABEL,
    SERVICE_LABEL,
    VERSION_LABEL,
    docker_client,
    managed_selector,
)


def _docker_missing():
    return not_installed_reason("docker", "the docker Python SDK (pip package docker) is not installed")


def _engine(check, timeout, low_level=False):
    """The engine client of a check: its ``docker_host``, else the docker CLI's environment, as docker.from_env
    read it (``DOCKER_HOST``, ``DOCKER_TLS_VERIFY``, ``DOCKER_CERT_PATH``), else the default socket."""
    if check["docker_host"]:
        return docker_client(check["docker_host"], timeout=timeout, low_level=low_level)
    return docker_client(os.environ.get("DOCKER_HOST") or None,
                         tls_verify=os.environ.get("DOCKER_TLS_VERIFY") not in (None, ""),
                         cert_path=os.environ.get("DOCKER_CERT_PATH") or None, timeout=timeout, low_level=low_level)


def probe_container(check):
    details = {"service": check["service"], "docker_host": check["docker_host"]}
    if lib("docker") is None:
        return result("unknown", "container %s: %s" % (check["service"], _docker_missing()), **details)
    # not managed_selector: a container check matches the service's containers whether or not they are managed
    labels = ["%s=%s" % (SERVICE_LABEL, check["service"])]
    if check["platform_host"]:
        labels.append("%s=%s" % (HOST_LABEL, check["platform_host"]))
    labels += ["%s=%s" % kv for kv in sorted(check["labels"].items())]
    try:
        api = _engine(check, max(1, int(math.ceil(check["timeout"]))) * 2, low_level=True)
        try:
            found = api.containers(all=True, filters={"label": labels})
            replicas = []
            for item in found:
                info = api.inspect_container(item["Id"])
                state = info.get("State") or {}
                cfg_labels = (info.get("Config") or {}).get("Labels") or {}
                replicas.append({
                    "name": (info.get("Name") or "").lstrip("/"),
                    "id": info.get("Id", "")[:12],
                    "replica": cfg_labels.get(REPLICA_LABEL),
                    "version": cfg_labels.get(VERSION_LABEL),
                    "status": state.get("Status"),
                    "running": bool(state.get("Running")),
                    "health": ((state.get("Health") or {}).get("Status")) or "none",
                    "restart_count": int(info.get("RestartCount") or 0),
                    "started_at": state.get("StartedAt"),
                })
        finally:
            api.close()
    except Exception as exc:  # pylint: disable=broad-except  # docker.errors.* and requests errors
        return result("crit", "container %s: Docker API error: %s" % (
            check["service"], " ".join(str(exc).split())[:300]), **details)
    replicas.sort(key=lambda r: (r["replica"] or "", r["name"]))
    if check["probe_path"]:
        _probe_replicas(check, found, replicas)
    details["replicas"] = replicas
    ready = [r for r in replicas if r["running"] and r["health"] in ("healthy", "none") and r.get("probe_ok", True)]
    details["running"] = len([r for r in replicas if r["running"]])
    details["ready"] = len(ready)
    text = "container %s: %d/%d replicas running and healthy" % (check["service"], len(ready), len(replicas))
    if len(ready) < check["min_replicas"]:
        bad = [_replica_text(r) for r in replicas if r not in ready]
        return result("crit", "%s, fewer than min_replicas %d%s" % (text, check["min_replicas"],
                                                                    (": " + ", ".join(bad)) if bad else ""), **details)
    problems = [_replica_text(r) for r in replicas if r not in ready]
    if check["max_restarts"] is not None:
        problems += ["%s restarted %d times > max_restarts %d" % (r["name"], r["restart_count"], check["max_restarts"])
                     for r in replicas if r["restart_count"] > check["max_restarts"]]
    if problems:
        return result("warn", "%s: %s" % (text, "; ".join(problems)), **details)
    return result("ok", text, **details)


def _replica_text(rep):
    text = "%s (%s, health %s" % (rep["name"], rep["status"], rep["health"])
    if "probe_ok" in rep and not rep["probe_ok"]:
        text += ", %s" % rep.get("probe_reason")
    return text + ")"


def _probe_replicas(check, found, replicas):
    """GET probe_path on each running replica's published probe_port, concurrently: the direct probe
    (bypassing the gateway) that tells a replica answering from one that only looks alive."""
    ports = {}
    for item in found:
        for port in item.get("Ports") or []:
            if port.get("PrivatePort") == check["probe_port"] and port.get("PublicPort"):
                host = port.get("IP") or "127.0.0.1"
                ports[item["Id"][:12]] = ("127.0.0.1" if host in ("0.0.0.0", "::") else host, port["PublicPort"])

    def one(rep):
        target = ports.get(rep["id"])
        if not rep["running"]:
            return
        if not target:
            rep.update(probe_ok=False, probe_reason="no published port %d" % check["probe_port"])
            return
        url = "http://%s:%s%s" % (target[0], target[1], check["probe_path"])
        start = time.monotonic()
        try:
            req = Request(url, headers={"User-Agent": "mcp.platform.mcp_health"})
            with build_opener().open(req, timeout=check["timeout"]) as resp:
                code = resp.status
        except HTTPError as exc:
            code = exc.code
        except Exception as exc:  # pylint: disable=broad-except  # any failure to answer is a failed probe
            rep.update(probe_url=url, probe_ok=False,
                       probe_reason="%s: %s" % (check["probe_path"], " ".join(str(exc).split())[:120]))
            return
        rep.update(probe_url=url, probe_code=code, probe_ok=code == 200,
                   probe_latency_ms=round((time.monotonic() - start) * 1000.0, 1),
                   probe_reason="%s answered HTTP %s" % (check["probe_path"], code))

    threads = [threading.Thread(target=one, args=(rep,)) for rep in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def probe_logs(check):
    """Error and warning lines of the matching containers' logs over the last `since` seconds."""
    details = {"since": check["since"]}
    if lib("docker") is None:
        return result("unknown", "logs: %s" % _docker_missing(), **details)
    labels = managed_selector(check["platform_host"], check["service"], check["labels"])
    try:
        client = _engine(check, max(1, int(math.ceil(check["timeout"]))) * 4)
        try:
            found = recent_problems(client, labels, check["since"], check["last"])
        finally:
            client.close()
    except LogsError as exc:
        return result("crit", "logs: %s" % " ".join(str(exc).split())[:300], **details)
    except Exception as exc:  # pylint: disable=broad-except  # docker.errors.* and requests errors
        return result("crit", "logs: Docker API error: %s" % " ".join(str(exc).split())[:300], **details)
    details.update(found)
    errors, warnings = found["counts"].get("error", 0), found["counts"].get("warn", 0)
    text = "%d errors, %d warnings in the last %s across %d containers" % (
        errors, warnings, ("%d h" % (check["since"] // 3600)) if check["since"] % 3600 == 0 else (
            "%d s" % check["since"]), len(found["containers"]))
    if errors >= check["crit_errors"]:
        return result("crit", "%s (crit_errors %d)" % (text, check["crit_errors"]), **details)
    if errors >= check["warn_errors"] and check["warn_errors"] > 0:
        return result("warn", "%s (warn_errors %d)" % (text, check["warn_errors"]), **details)
    return result("ok", text, **details)
