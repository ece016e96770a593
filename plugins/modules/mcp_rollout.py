#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mcp.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mcp_rollout
version_added: 0.3.0
short_description: Replace one host's MCP service replicas with a version, start-first, health-gated and drained
description:
  - Brings every replica slot (service, replica number) of one platform host to O(version) on a
    Docker-compatible engine, one replica at a time per service. For each slot it starts the new container
    next to the old one, waits until the new one is healthy three ways (the engine's container health, a
    direct probe of C(/health) and an MCP C(initialize) answering O(version), and the gateway reporting the new
    replica C(UP)), and only then retires the old one - C(POST /drain), wait until the gateway no longer
    routes to it and the engine reports it unhealthy, O(drain_grace), SIGTERM with O(stop_timeout), remove.
  - The gateway never routes to a replica that is not ready or already stopping, and a service never has
    fewer routed replicas than before.
  - An old replica's retirement overlaps the start of the next new replica; with O(parallel_services)
    the services of the host are replaced side by side (each still replica by replica).
  - The first failed gate stops every service at its next step and fails naming the host, the service, the
    replica and the check. Old replicas whose drain had begun are still taken out completely; the old
    replicas of unreplaced slots keep serving, and the failed new container is left for the caller's
    rollback (run the module again with the previous version) and for diagnosis.
  - Slots already running O(version) with the same definition are left alone; a second run changes nothing.
    The definition (image, O(env), labels, port, volumes, policies) is recorded as a digest label
    (C(io.mcp-platform.spec)), so a changed O(env) - a failover's new C(DATABASE_URL) - replaces the
    replicas of the same version, start-first like a version change.
  - The one engine that starts, gates, drains and stops the platform's replicas - O(mode=replace) for deploy,
    update, rollback and a failover's repointed services, O(mode=restart) for the manual's rolling restart,
    O(mode=stop) for a graceful stop.
  - Why a module and not C(community.docker.docker_container) plus C(ansible.builtin.uri) tasks (what the
    update role used before) - the order of the steps is the safety property, and as ~15 tasks per replica
    it cost about ten times the replica's own start-to-healthy time in task overhead.
author:
  - mcp.platform maintainers (@mcp-platform)
notes:
  - Run the module with C(ansible_python_interpreter=/opt/mcp-platform/venv/bin/python), the venv the
    mcp.platform.node role creates with the Docker SDK in it.
  - O(docker_timeout) is raised to at least O(stop_timeout) + 30 seconds, so a slow stop is not cut off.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mcp.platform.docker
attributes:
  check_mode:
    support: full
    details: Reports the slots that would be replaced (RV(plan)) and changes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  mode:
    description:
      - V(replace) - bring every slot to O(version) with this definition (created when missing).
      - V(restart) - restart every existing replica of O(services) in place, one at a time per service (the manual's
        C(mcp restart --rolling)) - drained out of the gateway, stopped with O(stop_timeout), started, and gated like a
        new replica (engine health, direct probe, gateway route) before the next; the same containers come back.
      - V(stop) - drain and stop every running replica of O(services), nothing started (C(mcp stop --graceful));
        O(version) and the images are not needed (nor with V(restart)).
    type: str
    choices: [replace, restart, stop]
    default: replace
  force:
    description: With O(mode=stop), kill the replicas at once (SIGKILL, no drain; C(mcp stop --force)).
    type: bool
    default: false
  host_label:
    description: The platform host whose containers are replaced (label C(io.mcp-platform.host)).
    type: str
    required: true
  inventory_host:
    description: Name of the host in messages; O(host_label) when omitted.
    type: str
  version:
    description:
      - Version to bring every slot to (label C(io.mcp-platform.version), checked by the MCP probe).
      - Required with O(mode=replace); a replica restarted in place must answer its own version.
    type: str
  replicas:
    description: Replicas per service (slots 1..N).
    type: int
    required: true
  services:
    description: The services to replace, in order.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Service name (label C(io.mcp-platform.service), gateway service C(<name>@docker)).
        type: str
        required: true
      image:
        description:
          - Image of O(version) for this service (pulled when missing); O(image) when omitted.
          - One of the two is required with O(mode=replace).
        type: str
      labels:
        description:
          - Labels of the new containers (the gateway's router labels and any extra ones). The module sets the
            C(io.mcp-platform.managed), C(host), C(service), C(replica), C(version) and C(spec) labels itself.
        type: dict
        default: {}
  image:
    description:
      - Image of every service without its own O(services[].image); C({service}) and C({version}) are replaced,
        for example V(registry.example.com/mcp-platform/{service}:{version}).
    type: str
  labels:
    description: Labels of every service's new containers (a service's own O(services[].labels) win).
    type: dict
    default: {}
  gateway_router:
    description:
      - Add the gateway's Docker-provider labels (router C(<service>) for C(PathPrefix(/mcp/<service>)), TLS router,
        strip-prefix middleware, health check), the same as the P(mcp.platform.gateway_labels#filter) filter.
    type: bool
    default: false
  gateway_health_interval:
    description: Interval of the gateway's active health check of each replica (with O(gateway_router)).
    type: str
    default: 1s
  env:
    description: Environment of the new containers (C(MCP_SERVICE) is added). Never logged.
    type: dict
    default: {}
  name_template:
    description: Container name; C({host}), C({service}), C({replica}) and C({version}) are replaced.
    type: str
    default: "{host}-{service}-{replica}-v{version}"
  bind_address:
    description: Host address the container port is published on (the engine picks the port).
    type: str
    default: 127.0.0.1
  container_port:
    description: The service's port inside the container.
    type: int
    default: 8080
  volumes:
    description: Bind mounts, C(source:target[:mode]).
    type: list
    elements: str
    default: []
  restart_policy:
    description: Restart policy of the new containers.
    type: str
    choices: ['no', always, unless-stopped, on-failure]
    default: unless-stopped
  stop_timeout:
    description: Seconds between SIGTERM and SIGKILL when an old replica is stopped.
    type: int
    default: 30
  gateway_admin_url:
    description:
      - The gateway's API (Traefik C(/api/http/services/<service>@docker)) that must route to a new replica, and stop
        routing to a drained one.
      - Omitted, the gateway is not asked (a host without one); the engine's health and the direct probe still gate.
    type: str
  health_timeout:
    description: Seconds a new replica has to become healthy and pass the direct probe.
    type: float
    default: 90
  unhealthy_grace:
    description: Seconds after its start a new replica reported unhealthy may still recover.
    type: float
    default: 30
  route_timeout:
    description: Seconds the gateway has to route to a new replica, and to stop routing to a drained one.
    type: float
    default: 30
  probe_path:
    description: HTTP path of the direct health probe (200 expected).
    type: str
    default: /health
  mcp_path:
    description: Path of the MCP endpoint for the direct C(initialize) probe.
    type: str
    default: /mcp
  min_tools:
    description: Tools the new replica must list.
    type: int
    default: 1
  drain:
    description: C(POST) O(drain_path) to an old replica and wait until the gateway stops routing to it before SIGTERM.
    type: bool
    default: true
  drain_path:
    description: Path that makes a replica fail its health check while it finishes requests in flight.
    type: str
    default: /drain
  drain_grace:
    description: Seconds between the gateway dropping a drained replica and its SIGTERM.
    type: float
    default: 1
  replica_delay:
    description: Seconds to wait after a new replica is routed before the next one starts (a slow-burn guard).
    type: float
    default: 0
  parallel_services:
    description: Replace the services side by side (each replica by replica); V(false) goes service by service.
    type: bool
    default: true
  poll_interval:
    description: Seconds between two polls of a gate.
    type: float
    default: 0.25
  keep_previous:
    description:
      - With O(mode=replace), leave the replaced replicas running (not drained) and route each service to its new
        replicas only, failing over to the previous ones the moment none of the new ones is healthy (a Traefik
        C(failover) service in O(gateway_dynamic_dir), C(mcp-guard-<service>.yml)). The post-cutover guard of an update.
      - A later run without it retires what is left of the previous replicas and removes the guard - the same version
        again after a passed watch, the previous version after a breach (its replicas still run, so nothing starts and
        the new ones are drained out of the guard's rotation).
      - Needs O(gateway_admin_url) (the guard is applied only once the gateway has loaded it) and O(gateway_dynamic_dir).
    type: bool
    default: false
  gateway_dynamic_dir:
    description:
      - The gateway's file-provider folder on this host, where O(keep_previous) writes the guard and a later run
        removes it. Omitted, a run never looks for a guard.
    type: path
seealso:
  - module: community.docker.docker_container
  - module: mcp.platform.mcp_health
"""

EXAMPLES = r"""
- name: Replace the replicas of mcp-1 with 1.1.0
  mcp.platform.mcp_rollout:
    docker_host: unix:///run/podman/podman.sock
    host_label: mcp-1
    version: 1.1.0
    replicas: 2
    services:
      - name: filesystem
        image: registry.example.com/mcp-platform/filesystem:1.1.0
        labels: {traefik.enable: "true"}
      - name: git
        image: registry.example.com/mcp-platform/git:1.1.0
        labels: {traefik.enable: "true"}
    env:
      DATABASE_URL: "{{ mcp_database_url }}"
    volumes: ["/var/lib/mcp/data:/data"]
    gateway_admin_url: http://127.0.0.1:8088
  register: rollout
"""

RETURN = r"""
plan:
  description: Every slot and what it needed (C(todo)), before anything was done.
  returned: always
  type: list
  elements: dict
replaced:
  description:
    - Slots brought to the version, with the new container, the old ones retired and the seconds to healthy and routed.
    - With O(mode=restart), C(restarted) names the replica restarted in place; with O(mode=stop), C(retired) the ones stopped.
    - With O(keep_previous), C(kept) names the previous replicas left running behind the guard instead of C(retired).
  returned: always
  type: list
  elements: dict
  sample:
    - {service: git, replica: 1, new: mcp-1-git-1-v1.1.0, healthy_after: 1.6, routed_after: 2.3,
       retired: [{name: mcp-1-git-1-v1.0.0, version: 1.0.0, drained: true, seconds: 2.1}]}
errors:
  description: "One message per failed gate: C(<host>, service <s> replica <n> at <version>: check '<check>' failed: <reason>)."
  returned: always
  type: list
  elements: str
guarded:
  description: Services routed by a guard written by this run (O(keep_previous)).
  returned: always
  type: list
  elements: str
cancelled:
  description:
    - Slots stopped at a gate because another service failed first (their old replicas still serve; the new container is
      left for the rollback).
  returned: always
  type: list
  elements: str
failed_checks:
  description: The names of the failed gates (container start, container health, direct /health, direct MCP initialize, gateway route, ...).
  returned: always
  type: list
  elements: str
seconds:
  description: Wall time of the replacement.
  returned: always
  type: float
"""

import math

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mcp.platform.plugins.module_utils.gateway_config import router_labels
from ansible_collections.mcp.platform.plugins.module_utils.platform import EngineError, docker_argument_spec, docker_client_from_params
from ansible_collections.mcp.platform.plugins.module_utils.rollout import Rollout
from ansible_collections.mcp.platform.plugins.module_utils.secrets import fail_masked, mask_text


def argument_spec():
    spec = docker_argument_spec()
    spec.update(
        mode=dict(type="str", default="replace", choices=["replace", "restart", "stop"]),
        force=dict(type="bool", default=False),
        host_label=dict(type="str", required=True),
        inventory_host=dict(type="str"),
        version=dict(type="str"),
        replicas=dict(type="int", required=True),
        services=dict(type="list", elements="dict", required=True, options=dict(
            name=dict(type="str", required=True),
            image=dict(type="str"),
            labels=dict(type="dict", default={}),
        )),
        image=dict(type="str"),
        labels=dict(type="dict", default={}),
        gateway_router=dict(type="bool", default=False),
        gateway_health_interval=dict(type="str", default="1s"),
        env=dict(type="dict", default={}, no_log=True),
        name_template=dict(type="str", default="{host}-{service}-{replica}-v{version}"),
        bind_address=dict(type="str", default="127.0.0.1"),
        container_port=dict(type="int", default=8080),
        volumes=dict(type="list", elements="str", default=[]),
        restart_policy=dict(type="str", default="unless-stopped", choices=["no", "always", "unless-stopped", "on-failure"]),
        stop_timeout=dict(type="int", default=30),
        gateway_admin_url=dict(type="str"),
        health_timeout=dict(type="float", default=90.0),
        unhealthy_grace=dict(type="float", default=30.0),
        route_timeout=dict(type="float", default=30.0),
        probe_path=dict(type="str", default="/health"),
        mcp_path=dict(type="str", default="/mcp"),
        min_tools=dict(type="int", default=1),
        drain=dict(type="bool", default=True),
        drain_path=dict(type="str", default="/drain"),
        drain_grace=dict(type="float", default=1.0),
        replica_delay=dict(type="float", default=0.0),
        parallel_services=dict(type="bool", default=True),
        poll_interval=dict(type="float", default=0.25),
        keep_previous=dict(type="bool", default=False),
        gateway_dynamic_dir=dict(type="path"),
    )
    return spec


def validate(p):
    """The first problem with the parameters as ``(option, message)``, or None."""
    if not p["host_label"].strip():
        return "host_label", "must not be empty"
    if p["force"] and p["mode"] != "stop":
        return "force", "only applies to mode=stop"
    if p["mode"] == "replace" and not (p["version"] or "").strip():
        return "version", "is required (and must not be empty) with mode=replace"
    if not 1 <= p["replicas"] <= 64:
        return "replicas", "must be between 1 and 64, got %d" % p["replicas"]
    if not p["services"]:
        return "services", "must name at least one service"
    names = [s["name"] for s in p["services"]]
    dup = sorted(set(n for n in names if names.count(n) > 1))
    if dup:
        return "services", "names a service twice: %s" % ", ".join(dup)
    for i, s in enumerate(p["services"]):
        if not s["name"].strip() or "/" in s["name"]:
            return "services[%d].name" % i, "must be a plain service name, got %r" % s["name"]
        if p["mode"] == "replace" and not (s["image"] or p["image"] or "").strip():
            return "services[%d].image" % i, "is required (or image for every service) with mode=replace"
    for key in ("health_timeout", "route_timeout", "poll_interval"):
        if not p[key] > 0 or math.isinf(p[key]) or math.isnan(p[key]):
            return key, "must be a positive number of seconds, got %s" % p[key]
    for key in ("unhealthy_grace", "drain_grace", "stop_timeout", "replica_delay"):
        if not 0 <= p[key] <= 86400:
            return key, "must be between 0 and 86400 seconds, got %s" % p[key]
    if not 1 <= p["container_port"] <= 65535:
        return "container_port", "must be a port number (1-65535), got %d" % p["container_port"]
    if p["gateway_admin_url"] is not None and not p["gateway_admin_url"].startswith(("http://", "https://")):
        return "gateway_admin_url", "must be an http(s):// URL, got %r" % p["gateway_admin_url"]
    try:
        p["name_template"].format(host="h", service="s", replica=1, version="v")
    except (KeyError, IndexError, ValueError) as exc:
        return "name_template", "only {host}, {service}, {replica} and {version} may be used (%s)" % exc
    for i, v in enumerate(p["volumes"]):
        if len(v.split(":")) not in (2, 3):
            return "volumes[%d]" % i, "must be source:target[:mode], got %r" % v
    if p["keep_previous"]:
        if p["mode"] != "replace":
            return "keep_previous", "only applies to mode=replace"
        for key in ("gateway_admin_url", "gateway_dynamic_dir"):
            if not p[key]:
                return key, "is required with keep_previous (the guard is written there and checked there)"
    for key in ("probe_path", "mcp_path", "drain_path"):
        if not p[key].startswith("/"):
            return key, "must be a path starting with /, got %r" % p[key]
    return None


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = dict(module.params)
    problem = validate(p)
    if problem:
        fail_masked(module, "%s %s" % problem, option=problem[0])
    p["inventory_host"] = p["inventory_host"] or p["host_label"]
    p["version"] = (p["version"] or "").strip()
    p["env"] = dict((k, "" if v is None else str(v)) for k, v in (p["env"] or {}).items())
    for s in p["services"]:
        labels = dict(p["labels"] or {})
        if p["gateway_router"]:
            try:
                labels.update(router_labels(s["name"], p["gateway_health_interval"], port=p["container_port"]))
            except ValueError as exc:
                fail_masked(module, "services %s: %s" % (s["name"], exc), option="services")
        labels.update(s["labels"] or {})
        s["labels"] = dict((k, "" if v is None else str(v)) for k, v in labels.items())
        if not s["image"] and p["image"]:
            try:
                s["image"] = p["image"].format(service=s["name"], version=p["version"])
            except (KeyError, IndexError, ValueError) as exc:
                fail_masked(module, "image only {service} and {version} may be used (%s)" % exc, option="image")

    try:
        api = docker_client_from_params(p, low_level=True, timeout=max(p["docker_timeout"], p["stop_timeout"] + 30))
    except EngineError as exc:
        fail_masked(module, str(exc))
    try:
        rollout = Rollout(api, p)
        try:
            slots = rollout.plan()
        except Exception as exc:  # pylint: disable=broad-except  # docker.errors.* and requests' connection errors
            where = p["docker_host"] or "the engine"
            fail_masked(module, "%s: cannot list containers on %s: %s" % (p["inventory_host"], where, " ".join(str(exc).split())[:300]))
        plan = [dict(s) for s in slots]
        if module.check_mode:
            module.exit_json(changed=any(s["todo"] for s in slots), plan=plan, replaced=[], errors=[], cancelled=[],
                             guarded=[], failed_checks=[], seconds=0.0)
        out = rollout.run(slots)
    finally:
        api.close()
    out["errors"] = [mask_text(e) for e in out["errors"]]
    if out["errors"]:
        msg = "; ".join(out["errors"])
        if out["cancelled"]:
            msg += " (stopped before its gates passed, old replica still serving: %s)" % "; ".join(out["cancelled"])
        fail_masked(module, msg, plan=plan, **out)
    module.exit_json(plan=plan, **out)


if __name__ == "__main__":
    main()
