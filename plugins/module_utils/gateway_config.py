# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mcp.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Traefik dynamic configuration (file provider) written by the collection.

Standard library only (the maintenance responder loads it by path). Files are JSON, which the
file provider reads as YAML, and are written atomically (temp file in the hidden sub-folder
``.mcp-tmp`` of the same folder, then rename) so Traefik's watcher never sees half a file and
reloads once per change.

Gateway contract: the Docker provider defines, per service, routers ``<svc>`` (entry point
``web``) and ``<svc>-tls`` (``websecure``) for ``PathPrefix(`/mcp/<svc>`)``, the service ``<svc>``
and the middleware ``<svc>-strip``. A router here with a higher priority wins over them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import stat
import tempfile

RESPONDER_SERVICE = "maintenance-responder"
SERVICE_HEADER = "X-MCP-Maintenance-Service"
DEFAULT_PRIORITY = 10000
TMP_SUBDIR = ".mcp-tmp"
HEADER_COMMENT = "# Managed by mcp.platform (mcp_maintenance). Derived from maintenance.json; do not edit.\n"


_SERVICE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}\Z")


def router_labels(service, health_interval="1s", health_timeout="1s", port=8080):
    """The Docker-provider labels of the contract above for one service's replicas (ValueError for a bad name)."""
    if not isinstance(service, str) or not _SERVICE.match(service):
        raise ValueError("the service name must be lower-case letters, digits, '_' and '-', got %r" % (service,))
    router = "traefik.http.routers." + service
    tls_router = router + "-tls"
    strip = service + "-strip"
    lb = "traefik.http.services.%s.loadbalancer" % service
    prefix = "/mcp/" + service
    rule = "PathPrefix(`%s`)" % prefix
    return {
        "traefik.enable": "true",
        router + ".rule": rule,
        router + ".entrypoints": "web",
        router + ".middlewares": strip,
        router + ".service": service,
        tls_router + ".rule": rule,
        tls_router + ".entrypoints": "websecure",
        tls_router + ".tls": "true",
        tls_router + ".middlewares": strip,
        tls_router + ".service": service,
        "traefik.http.middlewares.%s.stripprefix.prefixes" % strip: prefix,
        lb + ".server.port": str(int(port)),
        lb + ".healthcheck.path": "/health",
        lb + ".healthcheck.interval": str(health_interval),
        lb + ".healthcheck.timeout": str(health_timeout),
    }


def atomic_write(path, data, mode=0o644, tmp_dir=None):
    """Write to a temp file (in ``tmp_dir``, default the target's folder), fsync, rename over ``path``."""
    d = tmp_dir or os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_text(path):
    try:
        with open(path, "r") as fh:
            return fh.read()
    except (IOError, OSError):
        return None


def bq(text):
    """A Traefik rule literal (backtick-quoted)."""
    if "`" in text:
        raise ValueError("backticks are not allowed in %r" % text)
    return "`%s`" % text


def render_maintenance(entries, gateway):
    """Routers for services in maintenance.

    ``entries``: {service: entry} (active gateway services only); ``gateway``: settings
    (responder_url, service_provider, http_entrypoint, tls_entrypoint, priority).
    Returns the configuration dict, or None when there is nothing to route.
    """
    provider = gateway.get("service_provider") or "docker"
    prio = int(gateway.get("priority") or DEFAULT_PRIORITY)
    eps = [(gateway.get("http_entrypoint"), ""), (gateway.get("tls_entrypoint"), "-tls")]
    eps = [(ep, suffix) for ep, suffix in eps if ep]
    routers, middlewares = {}, {}
    for svc, entry in sorted(entries.items()):
        path_rule = "PathPrefix(%s)" % bq("/mcp/%s" % svc)
        tag = "maintenance-%s-tag" % svc
        middlewares[tag] = {"headers": {"customRequestHeaders": {SERVICE_HEADER: svc}}}
        bypass = ["ClientIP(%s)" % bq(c) for c in entry.get("bypass_sources") or []]
        hdr = entry.get("bypass_header")
        if hdr and hdr.get("name"):
            bypass.append("Header(%s, %s)" % (bq(hdr["name"]), bq(hdr.get("value") or "")))
        for ep, suffix in eps:
            r = {"rule": path_rule, "entryPoints": [ep], "priority": prio, "service": RESPONDER_SERVICE,
                 "middlewares": [tag]}
            if suffix:
                r["tls"] = {}
            routers["maintenance-%s%s" % (svc, suffix)] = r
            if bypass:
                b = {"rule": "%s && (%s)" % (path_rule, " || ".join(bypass)), "entryPoints": [ep],
                     "priority": prio * 2, "service": "%s@%s" % (svc, provider),
                     "middlewares": ["%s-strip@%s" % (svc, provider)]}
                if suffix:
                    b["tls"] = {}
                routers["maintenance-%s-bypass%s" % (svc, suffix)] = b
    if not routers:
        return None
    servers = [{"url": gateway["responder_url"]}]
    return {"http": {"routers": routers, "middlewares": middlewares,
                     "services": {RESPONDER_SERVICE: {"loadBalancer": {"servers": servers, "passHostHeader": True}}}}}


def gateway_text(config):
    if config is None:
        return None
    return HEADER_COMMENT + json.dumps(config, sort_keys=True, indent=2) + "\n"


def write_file(path, text, tmp_dir=None, mode=0o644):
    """Write ``text`` to ``path`` with ``mode`` (remove the file when text is None). True when it changed."""
    if path is None:
        return False
    current = read_text(path)
    if text is None:
        if current is None:
            return False
        os.unlink(path)
        return True
    if current == text:
        if stat.S_IMODE(os.stat(path).st_mode) == mode:
            return False
        os.chmod(path, mode)
        return True
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise ValueError("gateway dynamic folder %s does not exist" % os.path.dirname(path))
    # The temp file goes to a hidden sub-folder: Traefik watches only the folder itself, and a temp file
    # created there would trigger a reload *before* the rename, after which its providers throttle (2 s)
    # delays the reload that matters.
    # ``tmp_dir`` (e.g. the state folder) is used when it is on the same file system, so nothing at all
    # but the rename happens in the watched folder.
    folder = os.path.dirname(os.path.abspath(path))
    if not (tmp_dir and os.path.isdir(tmp_dir) and os.stat(tmp_dir).st_dev == os.stat(folder).st_dev):
        tmp_dir = os.path.join(folder, TMP_SUBDIR)
        try:
            os.mkdir(tmp_dir, 0o755)
        except OSError:
            # there already (another service's guard, written by a parallel thread, may have just made it)
            if not os.path.isdir(tmp_dir):
                raise
    atomic_write(path, text, mode, tmp_dir=tmp_dir)
    return True


GUARD_PRIORITY = DEFAULT_PRIORITY // 2  # above the Docker provider's routers, below maintenance (which must still win)


def guard_file(dynamic_dir, service):
    return os.path.join(dynamic_dir, "mcp-guard-%s.yml" % service)


def render_guard(service, next_urls, previous_urls, health_interval="1s", health_timeout="1s", provider="docker",
                 http_entrypoint="web", tls_entrypoint="websecure"):
    """Routers that send ``service`` to its new replicas only, failing over to the previous ones.

    The post-cutover guard of an update: the previous replicas keep running out of rotation while the new ones are
    watched. ``<svc>-next`` is health-checked like the Docker provider's service; the moment none of its servers
    is healthy (the new version degrading), Traefik's failover sends every request to ``<svc>-previous`` (not
    health-checked: those replicas were healthy and serve until the rollback has replaced the new ones), so a late
    failure costs no request. Removing the file hands the routing back to the Docker provider's routers. With no
    new replica left (a rollback taking them out one by one) the routers go to the previous ones directly.
    """
    if not _SERVICE.match(service or ""):
        raise ValueError("bad service name %r" % (service,))
    name = "guard-%s" % service
    rule = "PathPrefix(%s)" % bq("/mcp/%s" % service)
    routers = {}
    for ep, suffix in ((http_entrypoint, ""), (tls_entrypoint, "-tls")):
        if not ep:
            continue
        r = {"rule": rule, "entryPoints": [ep], "priority": GUARD_PRIORITY, "service": name if next_urls else name + "-previous",
             "middlewares": ["%s-strip@%s" % (service, provider)]}
        if suffix:
            r["tls"] = {}
        routers[name + suffix] = r
    services = {name + "-previous": {"loadBalancer": {"servers": [{"url": u} for u in sorted(previous_urls)]}}}
    if next_urls:
        services[name] = {"failover": {"service": name + "-next", "fallback": name + "-previous"}}
        services[name + "-next"] = {"loadBalancer": {"servers": [{"url": u} for u in sorted(next_urls)],
                                                     "healthCheck": {"path": "/health", "interval": str(health_interval),
                                                                     "timeout": str(health_timeout)}}}
    text = json.dumps({"http": {"routers": routers, "services": services}}, sort_keys=True, indent=2)
    return "# Managed by mcp.platform (mcp_rollout keep_previous): the post-cutover guard of %s.\n%s\n" % (service, text)


def guard_urls(text, service):
    """The (next, previous) server URLs of ``service``'s guard file text; None for no guard or one not ours."""
    try:
        services = json.loads(text.split("\n", 1)[1])["http"]["services"] if text else None
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    if not isinstance(services, dict):
        return None

    def urls(role):
        lb = (services.get("guard-%s-%s" % (service, role)) or {}).get("loadBalancer") or {}
        return [s.get("url") for s in lb.get("servers") or [] if isinstance(s, dict) and s.get("url")]

    return urls("next"), urls("previous")
