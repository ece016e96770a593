# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The post-cutover guard of mcp_rollout (keep_previous): the previous replicas kept running out of rotation, the
gateway failing over to them (gateway_config.render_guard), and their retirement behind it. Rollout's guard half."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from urllib.error import URLError

from ansible_collections.mcp.platform.plugins.module_utils import gateway_api as ga
from ansible_collections.mcp.platform.plugins.module_utils.gateway_config import guard_file, guard_urls, read_text, render_guard, write_file
from ansible_collections.mcp.platform.plugins.module_utils.platform import SERVICE_LABEL, SPEC_LABEL, VERSION_LABEL
from ansible_collections.mcp.platform.plugins.module_utils.rollout_plan import RolloutError, _doing, _one_line, published_url, spec_digest


class GuardMixin(object):
    """Needs Rollout's ``p``, ``containers``, ``_wait``, ``_remove``, ``lock``, ``changed``, ``guarded`` and ``sleep``."""

    def _guard(self, svc):
        """Route the service to its new replicas only, failing over to the kept previous ones (gateway_config)."""
        p = self.p
        step = "%s, service %s %s" % (p["inventory_host"], svc["name"], _doing(p))
        spec = spec_digest(svc, p)
        nxt, prev = [], []
        for c in self.containers():
            labels = c.get("Labels") or {}
            if labels.get(SERVICE_LABEL) != svc["name"] or c.get("State") != "running":
                continue
            url = published_url(c.get("Ports") or [], p["container_port"])
            if labels.get(VERSION_LABEL) == p["version"] and labels.get(SPEC_LABEL) == spec:
                nxt.append(url)
            else:
                prev.append(url)
        if not prev:
            self._unguard(svc["name"])
            return
        path = guard_file(p["gateway_dynamic_dir"], svc["name"])
        text = render_guard(svc["name"], nxt, prev, p["gateway_health_interval"], p["gateway_health_interval"])
        try:
            changed = write_file(path, text)
        except (OSError, ValueError) as exc:
            raise RolloutError(step, "gateway guard", "writing %s: %s" % (path, _one_line(exc)))
        with self.lock:
            self.changed = self.changed or changed
            self.guarded.append(svc["name"])
        seen = {}

        def loaded():
            try:
                seen["router"] = ga.gateway_router(p["gateway_admin_url"], "guard-%s@file" % svc["name"])
                seen["servers"] = ga.gateway_servers(p["gateway_admin_url"], "guard-%s-next" % svc["name"], provider="file")
            except (URLError, OSError, ValueError) as exc:
                seen["servers"] = {"error": _one_line(exc)}
                return False
            return (seen["router"] or {}).get("status") == "enabled" and all(seen["servers"].get(u) == "UP" for u in nxt)

        if not self._wait(p["route_timeout"], loaded):
            raise RolloutError(step, "gateway guard", "%s did not load %s within %s s (router: %s, servers: %s)" % (
                p["gateway_admin_url"], path, p["route_timeout"], (seen.get("router") or {}).get("status"), seen.get("servers")))

    def _unguard(self, service):
        """Remove a guard a keep_previous run left (the previous replicas are gone) and wait until the gateway drops it."""
        p = self.p
        if not p.get("gateway_dynamic_dir"):
            return
        path = guard_file(p["gateway_dynamic_dir"], service)
        try:
            changed = write_file(path, None)
        except OSError as exc:
            raise RolloutError("%s, service %s" % (p["inventory_host"], service), "gateway guard", "removing %s: %s" % (path, _one_line(exc)))
        if not changed:
            return
        with self.lock:
            self.changed = True

        def dropped():
            try:
                return ga.gateway_router(p["gateway_admin_url"], "guard-%s@file" % service) is None
            except (URLError, OSError, ValueError):
                return False

        if p.get("gateway_admin_url"):
            self._wait(p["route_timeout"], dropped)

    def _guard_role(self, service, old):
        """``next`` or ``previous``: which side of a guard left by an earlier keep_previous run ``old`` serves on."""
        p = self.p
        if p.get("keep_previous") or not p.get("gateway_dynamic_dir") or old["state"] != "running" or not old["url"]:
            return None
        nxt, prev = guard_urls(read_text(guard_file(p["gateway_dynamic_dir"], service)), service) or ((), ())
        if old["url"] in nxt:
            return "next"
        return "previous" if old["url"] in prev else None

    def _out_of_guard(self, service, url):
        """Take a new replica out of the guard's rotation and wait until the gateway loaded that.

        Only a health check keeps a drained replica out of ``guard-<svc>-next``, and any configuration rebuild (the
        Docker provider seeing a container stop) makes a fresh balancer that counts every listed server UP until its
        next check: a stopped replica still listed gets requests again (502). Unlisted, it gets none.
        """
        p = self.p
        path = guard_file(p["gateway_dynamic_dir"], service)
        urls = guard_urls(read_text(path), service)
        if not urls or url not in urls[0]:
            return
        nxt = [u for u in urls[0] if u != url]
        try:
            write_file(path, render_guard(service, nxt, urls[1], p["gateway_health_interval"], p["gateway_health_interval"]))
        except (OSError, ValueError) as exc:
            raise RolloutError("%s, service %s" % (p["inventory_host"], service), "gateway guard",
                               "writing %s: %s" % (path, _one_line(exc)))
        if p.get("gateway_admin_url"):
            self._poll(p["route_timeout"], lambda: url not in ga.gateway_servers(
                p["gateway_admin_url"], "guard-%s-next" % service, provider="file"))

    def _poll(self, seconds, probe):
        """``probe()`` every poll_interval until truthy or ``seconds`` passed (not cancellable: retirements finish)."""
        deadline = self.clock() + seconds
        while self.clock() < deadline:
            try:
                if probe():
                    return True
            except (URLError, OSError, ValueError):
                pass
            self.sleep(self.p["poll_interval"])
        return False

    def _retire_behind_guard(self, service, old, role, t0):
        """Retire a replica the guard routes: the previous ones get no request there and stop at once; a new one (a
        rollback after a breach) is drained, taken out of the guard's rotation (_out_of_guard) and only then
        stopped. Either is gone from the Docker provider's service before the guard hands the routing back to it."""
        p = self.p
        admin = p.get("gateway_admin_url")
        drained = False
        if role == "next":
            if p["drain"] and not p.get("force"):
                drained = ga.post(old["url"] + p["drain_path"]) == 200
            self._out_of_guard(service, old["url"])
            if drained and p["drain_grace"] > 0:
                self.sleep(p["drain_grace"])
        self._remove(old["id"], stop_timeout=p["stop_timeout"])
        if admin:
            self._poll(p["route_timeout"], lambda: old["url"] not in ga.gateway_servers(admin, service))
        return {"name": old["name"], "version": old["version"], "drained": drained, "behind_guard": role,
                "seconds": round(self.clock() - t0, 2)}
