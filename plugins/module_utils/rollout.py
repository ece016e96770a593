# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start-first, health-gated replacement of one host's service replicas (mcp_rollout).

Why a module and not composed docker_container / uri tasks: the order of one replica's replacement
(new container healthy, answering directly, routed by the gateway; only then the old one drained, out
of the gateway, stopped) is the safety property, and as ~15 Ansible tasks per replica it cost ~12 s of
task overhead per replica, ten times the replica's own start-to-healthy time. Here each step polls at
``poll_interval`` and the old replica's retirement overlaps the next replica's start, which keeps the
order: a replica is retired only after its successor is routed.

Services are independent (own routes, own replicas), so with ``parallel_services`` they are replaced
side by side, each still replica by replica. A failure stops every service at its next step; an old
replica whose drain has begun is always taken out completely (a drained replica left running would look
healthy to a rollback and answer 503 to users).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import time
from urllib.error import URLError

from ansible_collections.mcp.platform.plugins.module_utils import gateway_api as ga
from ansible_collections.mcp.platform.plugins.module_utils.health.checks import validate_check
from ansible_collections.mcp.platform.plugins.module_utils.health.network import probe_http, probe_mcp
from ansible_collections.mcp.platform.plugins.module_utils.platform import (  # noqa: F401  (ro.*_LABEL in tests)
    HOST_LABEL,
    MANAGED_LABEL,
    REPLICA_LABEL,
    SERVICE_LABEL,
    SPEC_LABEL,
    VERSION_LABEL,
)
from ansible_collections.mcp.platform.plugins.module_utils.rollout_guard import GuardMixin
from ansible_collections.mcp.platform.plugins.module_utils.rollout_plan import (  # noqa: F401  (the module's API)
    RolloutError,
    _doing,
    _one_line,
    container_name,
    inspect_url,
    plan_slots,
    spec_digest,
)


class Cancelled(Exception):
    """Another service failed; this one stops at its next step."""


class Rollout(GuardMixin):
    """One host's replacement. ``api`` is a docker.APIClient; ``p`` the module's validated parameters."""

    def __init__(self, api, p, clock=time.monotonic, sleep=time.sleep):
        self.api, self.p, self.clock, self.sleep = api, p, clock, sleep
        self.cancel = threading.Event()
        self.lock = threading.Lock()
        self.replaced, self.errors, self.retirements, self.cancelled, self.guarded = [], [], [], [], []
        self.changed = False

    # ---- engine -------------------------------------------------------------------------------
    def containers(self):
        selector = ["%s=true" % MANAGED_LABEL, "%s=%s" % (HOST_LABEL, self.p["host_label"])]
        return self.api.containers(all=True, filters={"label": selector})

    def plan(self):
        services = [s["name"] for s in self.p["services"]]
        specs = dict((s["name"], spec_digest(s, self.p)) for s in self.p["services"])
        return plan_slots(self.containers(), services, self.p["replicas"], self.p["version"],
                          mode=self.p.get("mode") or "replace", specs=specs)

    def _inspect(self, ident):
        import docker  # pylint: disable=import-outside-toplevel
        try:
            return self.api.inspect_container(ident)
        except docker.errors.NotFound:
            return None

    def _remove(self, ident, stop_timeout=None):
        import docker  # pylint: disable=import-outside-toplevel
        try:
            if stop_timeout is not None:
                self.api.stop(ident, timeout=int(stop_timeout))
            self.api.remove_container(ident, force=True)
        except docker.errors.NotFound:
            pass
        with self.lock:
            self.changed = True

    def _start(self, svc, rep, step, olds=()):
        import docker  # pylint: disable=import-outside-toplevel
        p = self.p
        name = container_name(p["name_template"], p["host_label"], svc["name"], rep, p["version"])
        # A replica of the same version (restart, changed spec) holds the name: it keeps serving under another
        # name until its successor is routed, so the slot's name stays what the template says.
        for old in olds:
            if old["name"] == name:
                retiring = "%s-retiring-%s" % (name, old["id"][:12])
                try:
                    self.api.rename(old["id"], retiring)
                except docker.errors.APIError as exc:
                    raise RolloutError(step, "container start", "renaming %s out of the way: %s" % (name, _one_line(exc)))
                old["name"] = retiring
        labels = dict(svc.get("labels") or {})
        labels.update({MANAGED_LABEL: "true", HOST_LABEL: p["host_label"], SERVICE_LABEL: svc["name"],
                       REPLICA_LABEL: str(rep), VERSION_LABEL: p["version"], SPEC_LABEL: spec_digest(svc, p)})
        env = dict(p.get("env") or {})
        env["MCP_SERVICE"] = svc["name"]
        port = p["container_port"]
        host_config = self.api.create_host_config(
            port_bindings={port: (p["bind_address"],)},
            binds=list(p.get("volumes") or []),
            restart_policy={"Name": p["restart_policy"]} if p["restart_policy"] != "no" else None,
        )
        kwargs = dict(image=svc["image"], name=name, labels=labels, environment=env, ports=[port],
                      host_config=host_config, stop_timeout=int(p["stop_timeout"]), detach=True)
        try:
            created = self.api.create_container(**kwargs)
        except docker.errors.ImageNotFound:
            self.api.pull(svc["image"])
            created = self.api.create_container(**kwargs)
        except docker.errors.APIError as exc:
            raise RolloutError(step, "container start", "creating %s: %s" % (name, _one_line(exc)))
        with self.lock:
            self.changed = True
        try:
            self.api.start(created["Id"])
        except docker.errors.APIError as exc:
            raise RolloutError(step, "container start", "starting %s: %s" % (name, _one_line(exc)))
        return name, created["Id"]

    # ---- gates --------------------------------------------------------------------------------
    def _wait(self, timeout, probe):
        """Call ``probe()`` every poll_interval until it returns a truthy value or ``timeout``; the last value."""
        deadline = self.clock() + timeout
        while True:
            if self.cancel.is_set():
                raise Cancelled()
            value = probe()
            if value or self.clock() >= deadline:
                return value
            self.sleep(self.p["poll_interval"])

    def _container_health(self, ident, name, started, step):
        state = {}

        def probe():
            info = self._inspect(ident)
            state["info"] = info
            if info is None:
                return "gone"
            st = info.get("State") or {}
            health = (st.get("Health") or {}).get("Status") or "none"
            if not st.get("Running"):
                return "exited"
            if health in ("healthy", "none"):
                return "healthy"
            if health == "unhealthy" and self.clock() - started > self.p["unhealthy_grace"]:
                return "unhealthy"
            return None

        outcome = self._wait(self.p["health_timeout"], probe)
        if outcome == "healthy":
            return state["info"]
        info = state.get("info") or {}
        st = info.get("State") or {}
        logs = (st.get("Health") or {}).get("Log") or []
        last = " ".join(str((logs[-1] if logs else {}).get("Output") or "").split())[:200]
        raise RolloutError(step, "container health", "%s is %s with health %s %.1f s after its start (last probe: %s)"
                           % (name, st.get("Status") or "missing", (st.get("Health") or {}).get("Status") or "none",
                              self.clock() - started, last))

    def _direct_probe(self, url, step, version=None):
        p = self.p
        checks = [validate_check({"name": "direct /health", "type": "http", "url": url + p["probe_path"],
                                  "status_code": [200], "timeout": 3}),
                  validate_check({"name": "direct MCP initialize", "type": "mcp", "url": url + p["mcp_path"],
                                  "expect_version": version or p["version"], "min_tools": p["min_tools"], "timeout": 5})]
        last = {}

        def probe():
            for c in checks:
                res = probe_http(c) if c["type"] == "http" else probe_mcp(c)
                if res["status"] != "ok":
                    last["check"], last["reason"] = c["name"], res["reason"]
                    return False
            return True

        if not self._wait(p["health_timeout"], probe):
            raise RolloutError(step, last.get("check", "direct probe"), last.get("reason", "no answer"))

    def _routed(self, service, url, step):
        p = self.p
        seen = {}

        def probe():
            try:
                seen["servers"] = ga.gateway_servers(p["gateway_admin_url"], service)
            except (URLError, OSError, ValueError) as exc:
                seen["servers"] = {"error": _one_line(exc)}
                return False
            return seen["servers"].get(url) == "UP"

        if not self._wait(p["route_timeout"], probe):
            raise RolloutError(step, "gateway route", "%s does not route %s to %s after %s s (servers: %s)"
                               % (p["gateway_admin_url"], service, url, p["route_timeout"], seen.get("servers")))

    # ---- retirement ---------------------------------------------------------------------------
    def _retire(self, service, old, keep=None):
        """Drain (the gateway stops routing), grace, SIGTERM with stop_timeout, remove. Never cancelled.

        ``keep`` (default: in mode stop) stops the container without removing it.
        """
        p = self.p
        t0 = self.clock()
        role = self._guard_role(service, old) if not keep and p.get("mode") == "replace" else None
        if role:
            return self._retire_behind_guard(service, old, role, t0)
        drained = False
        if p["drain"] and not p.get("force") and old["state"] == "running" and old["url"]:
            drained = ga.post(old["url"] + p["drain_path"]) == 200
        if drained:
            admin = p.get("gateway_admin_url")
            deadline = self.clock() + p["route_timeout"]

            def left():
                return max(0.0, deadline - self.clock())

            if admin:
                self._poll(left(), lambda: ga.gateway_servers(admin, service).get(old["url"]) != "UP")

            # the engine reporting it unhealthy makes the gateway's Docker provider drop it for good
            def not_healthy():
                st = (self._inspect(old["id"]) or {}).get("State") or {}
                return not st.get("Running") or (st.get("Health") or {}).get("Status") != "healthy"

            self._poll(left(), not_healthy)
            # until the gateway drops it from its configuration: a rebuild of the configuration (any other
            # container starting or stopping) makes a fresh balancer that counts every listed server UP until its
            # next health check, so a drained replica still listed can be sent requests again (502 once stopped)
            if admin:
                self._poll(left(), lambda: old["url"] not in ga.gateway_servers(admin, service))
            if p["drain_grace"] > 0:
                self.sleep(p["drain_grace"])
        if keep or (keep is None and p.get("mode") == "stop"):
            # mcp stop keeps the container (its logs, and mcp start brings the slot back); --force is SIGKILL now
            if p.get("force"):
                self.api.kill(old["id"])
            else:
                self.api.stop(old["id"], timeout=int(p["stop_timeout"]))
            with self.lock:
                self.changed = True
        else:
            self._remove(old["id"], stop_timeout=p["stop_timeout"] if old["state"] == "running" else None)
        return {"name": old["name"], "version": old["version"], "drained": drained, "seconds": round(self.clock() - t0, 2)}

    def _retire_async(self, service, slot_report, olds):
        def run():
            for old in olds:
                try:
                    slot_report["retired"].append(self._retire(service, old))
                except Exception as exc:  # pylint: disable=broad-except  # docker/requests errors
                    with self.lock:
                        self.errors.append(RolloutError(slot_report["step"], "stop old replica",
                                                        "%s: %s" % (old["name"], _one_line(exc))))
        t = threading.Thread(target=run, name="retire-%s" % slot_report["step"])
        t.daemon = True
        t.start()
        with self.lock:
            self.retirements.append(t)
        return t

    def _gate(self, svc, ident, name, started, step, report, version=None):
        """The three gates of a replica that just started: engine health, direct probe, gateway route."""
        p = self.p
        info = self._container_health(ident, name, started, step)
        report["healthy_after"] = round(self.clock() - started, 2)
        url = inspect_url(info, p["container_port"])
        if not url:
            raise RolloutError(step, "direct probe", "%s publishes no port for %d" % (name, p["container_port"]))
        self._direct_probe(url, step, version)
        if p.get("gateway_admin_url"):
            self._routed(svc["name"], url, step)
        report["routed_after"] = round(self.clock() - started, 2)

    def _restart_in_place(self, svc, ctr, step, t0):
        """mcp restart of one replica: drained out of the gateway, stopped gracefully, started, gated again.

        The same container (its id, name and definition) comes back; the service's other replicas serve meanwhile.
        """
        import docker  # pylint: disable=import-outside-toplevel
        out = {"restarted": ctr["name"], "drained": False}
        if ctr["state"] == "running":
            retired = self._retire(svc["name"], ctr, keep=True)
            out["drained"] = retired["drained"]
        try:
            self.api.start(ctr["id"])
        except docker.errors.APIError as exc:
            raise RolloutError(step, "container start", "starting %s: %s" % (ctr["name"], _one_line(exc)))
        with self.lock:
            self.changed = True
        self._gate(svc, ctr["id"], ctr["name"], self.clock(), step, out, version=ctr["version"])
        out["seconds"] = round(self.clock() - t0, 2)
        return out

    # ---- one service --------------------------------------------------------------------------
    def _service(self, svc, slots):
        p = self.p
        pending = None
        step = None
        try:
            for slot in slots:
                if self.cancel.is_set():
                    return
                step = "%s, service %s replica %d %s" % (p["inventory_host"], svc["name"], slot["replica"], _doing(p))
                report = {"service": svc["name"], "replica": slot["replica"], "step": step, "retired": [], "new": None}
                t0 = self.clock()
                if slot.get("in_place"):
                    report.update(self._restart_in_place(svc, slot["old"][0], step, t0))
                    with self.lock:
                        self.replaced.append(report)
                    if p["replica_delay"] > 0:
                        self._wait(p["replica_delay"], lambda: False)
                    continue
                for stale in slot["stale"]:
                    self._remove(stale["id"])
                if slot.get("start", not slot["have_new"]):
                    name, ident = self._start(svc, slot["replica"], step, slot["old"])
                    report["new"] = name
                    self._gate(svc, ident, name, t0, step, report)
                    if p["replica_delay"] > 0:
                        self._wait(p["replica_delay"], lambda: False)
                with self.lock:
                    self.replaced.append(report)
                if p.get("keep_previous") and slot["old"]:
                    # kept running out of rotation behind the guard below, until a later run retires them
                    report["kept"] = [o["name"] for o in slot["old"] if o["state"] == "running"]
                    continue
                # one retirement in flight per service: the next new replica starts while this old one drains
                if pending is not None:
                    pending.join()
                pending = self._retire_async(svc["name"], report, slot["old"]) if slot["old"] else None
            if p.get("keep_previous"):
                self._guard(svc)
        except Cancelled:
            # stopped at a gate because another service failed: named in the result, its old replica still serving
            with self.lock:
                self.cancelled.append(step)
            return
        except RolloutError as exc:
            with self.lock:
                self.errors.append(exc)
            self.cancel.set()
        except Exception as exc:  # pylint: disable=broad-except  # docker.errors.*, requests errors
            with self.lock:
                self.errors.append(RolloutError("%s, service %s %s" % (p["inventory_host"], svc["name"], _doing(p)),
                                                "container engine", _one_line(exc)))
            self.cancel.set()

    def run(self, slots=None):
        """Replace what ``slots`` (default: plan()) needs; returns the report. Raises nothing for a failed gate."""
        t0 = self.clock()
        slots = self.plan() if slots is None else slots
        by_service = [(svc, [s for s in slots if s["service"] == svc["name"] and s["todo"]]) for svc in self.p["services"]]
        by_service = [(svc, todo) for svc, todo in by_service if todo]
        if self.p["parallel_services"] and len(by_service) > 1:
            threads = [threading.Thread(target=self._service, args=(svc, todo), name="svc-%s" % svc["name"])
                       for svc, todo in by_service]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        else:
            for svc, todo in by_service:
                self._service(svc, todo)
                if self.cancel.is_set():
                    break
        for t in list(self.retirements):
            t.join()
        if not self.p.get("keep_previous") and not self.errors:
            # the previous replicas are gone: the Docker provider's routers take the service back
            for svc in self.p["services"]:
                try:
                    self._unguard(svc["name"])
                except RolloutError as exc:
                    self.errors.append(exc)
        order = [s["name"] for s in self.p["services"]]
        self.errors.sort(key=lambda e: (_rank(e.step, order), str(e)))
        self.replaced.sort(key=lambda r: (order.index(r["service"]), r["replica"]))
        cancelled = sorted((s for s in self.cancelled if s), key=lambda step: _rank(step, order))
        return {"changed": self.changed, "replaced": self.replaced, "errors": [str(e) for e in self.errors],
                "cancelled": cancelled, "guarded": sorted(self.guarded),
                "failed_checks": [e.check for e in self.errors], "seconds": round(self.clock() - t0, 2)}


def _rank(step, order):
    """Position of the service a step names in the services' order (messages follow it)."""
    for i, name in enumerate(order):
        if (", service %s " % name) in step:
            return i
    return len(order)
