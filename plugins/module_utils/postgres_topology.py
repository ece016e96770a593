# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which PostgreSQL node is the primary, which is the candidate, and where DATABASE_URL points (PRIVATE).

The failover role decides this before it touches anything: from the inventory's nodes, what each answered when
probed (primary, replica or down) and the DATABASE_URL every MCP host has. It was ~100 lines of nested ``set_fact``;
as plain Python the rules are written once, unit-tested case by case, and the role only reads the answer.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORT = 5432


def describe_nodes(node_vars, admin_user, admin_db, default_data_dir):
    """{name: {host, port, hostport, dsn (no password), data_dir}} from each node's inventory variables."""
    nodes = {}
    for name, hv in node_vars.items():
        host = hv.get("mcp_postgres_host") or hv.get("ansible_host") or name
        port = int(hv.get("mcp_postgres_port") or DEFAULT_PORT)
        nodes[name] = {"host": host, "port": port, "hostport": "%s:%d" % (host, port),
                       "dsn": "host=%s port=%d user=%s dbname=%s" % (host, port, admin_user, admin_db),
                       "data_dir": hv.get("mcp_postgres_data_dir") or default_data_dir}
    return nodes


def url_target(url):
    """``host:port`` a DATABASE_URL (URI or key=value form) points at; '' when it names none."""
    url = (url or "").strip()
    if not url:
        return ""
    if "://" in url:
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            port = DEFAULT_PORT
        if host and ":" in host:
            host = "[%s]" % host
        return "%s:%d" % (host, port) if host else ""
    kv = {}
    for token in url.split():
        if "=" in token:
            k, v = token.split("=", 1)
            kv[k.strip().lower()] = v.strip().strip("'")
    return "%s:%s" % (kv["host"], kv.get("port") or DEFAULT_PORT) if kv.get("host") else ""


def repoint(url, hostport):
    """``url`` (URI or key=value DSN) pointing at ``hostport`` instead, everything else (user, password, options) kept."""
    host, _sep, port = hostport.rpartition(":")
    if "://" in url:
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = ("%s@" % userinfo if userinfo else "") + hostport
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    tokens, seen = [], set()
    for token in url.split():
        key = token.split("=", 1)[0].strip().lower()
        if key in ("host", "hostaddr", "port"):
            if key not in seen and key != "hostaddr":
                tokens.append("%s=%s" % (key, host if key == "host" else port))
            seen.add(key)
            continue
        tokens.append(token)
    tokens += ["%s=%s" % (k, v) for k, v in (("host", host), ("port", port)) if k not in seen]
    return " ".join(tokens)


def _split_target(target):
    host, _sep, port = target.rpartition(":")
    return host, int(port) if port.isdigit() else DEFAULT_PORT


def _node_at(nodes, target):
    if not target:
        return ""
    host, _sep, port = target.rpartition(":")
    for name, node in sorted(nodes.items()):
        if node["host"] in (host, "localhost" if host in ("127.0.0.1", "::1") else host) and str(node["port"]) == port:
            return name
    return ""


def decide_topology(nodes, roles, database_urls, action="status", candidate="", primary="",
                    candidate_dsn="", primary_dsn="", password_suffix=""):
    """The failover's view of the cluster, or the reason it cannot decide.

    ``roles``: {node: primary|replica|down} (the controller's probe). ``database_urls``: every MCP host's
    DATABASE_URL. ``candidate``/``primary`` (node names) and the ``*_dsn`` overrides win over what is found.
    Returns a dict with ``nodes``, ``roles``, ``url_targets``, ``url_node``, ``candidate``, ``primary``,
    ``candidate_dsn``, ``primary_dsn``, ``summary`` and ``problem`` (None when the action can go on).
    """
    targets = sorted(set(t for t in (url_target(u) for u in database_urls) if t))
    url_node = _node_at(nodes, targets[0]) if targets else ""
    replicas = sorted(n for n, r in roles.items() if r == "replica")
    primaries = sorted(n for n, r in roles.items() if r == "primary")
    if not candidate:
        # the one replica; with none, the one primary (a switchover back, or a status on a single node)
        candidate = replicas[0] if len(replicas) == 1 else (primaries[0] if not replicas and primaries else "")
    if not primary:
        if url_node and url_node != candidate:
            primary = url_node
        elif len(nodes) == 2:
            primary = [n for n in sorted(nodes) if n != candidate][0] if candidate in nodes else ""
    cand_dsn = candidate_dsn or (nodes[candidate]["dsn"] + password_suffix if candidate in nodes else "")
    prim_dsn = primary_dsn or (nodes[primary]["dsn"] + password_suffix if primary in nodes else "")
    pair = [nodes[n]["hostport"] for n in (candidate, primary) if n in nodes]
    problem = None
    if not cand_dsn:
        problem = "no candidate"
    elif not prim_dsn and action not in ("status", "rejoin"):
        problem = "no old primary"
    elif action != "status" and len(targets) > 1 and set(targets) - set(pair):
        # one target, or a repoint an unreachable host interrupted: some hosts on the old primary, some on the candidate
        problem = "the MCP hosts' DATABASE_URLs point at %s: they must agree" % ", ".join(targets)
    if problem:
        problem = ("cannot decide (%s): candidate '%s', old primary '%s' (node roles %s; DATABASE_URL targets %s). Name them "
                   "with -e failover_candidate=<host> -e failover_primary=<host>"
                   % (problem, candidate, primary, ", ".join("%s=%s" % kv for kv in sorted(roles.items())) or "none",
                      ", ".join(targets) or "none"))
    summary = "nodes: %s; DATABASE_URL points at %s (%s); candidate %s, old primary %s" % (
        ", ".join("%s=%s" % kv for kv in sorted(roles.items())) or "none", " / ".join(targets) or "nothing",
        url_node or "no inventory node", "from failover_candidate_dsn" if candidate_dsn else (candidate or "-"),
        "from failover_primary_dsn" if primary_dsn else (primary or "-"))
    primary_host, primary_port = _split_target(url_target(prim_dsn) or "127.0.0.1:%d" % DEFAULT_PORT)
    return {"nodes": nodes, "roles": dict(roles), "url_targets": targets, "url_node": url_node, "candidate": candidate,
            "primary": primary, "candidate_dsn": cand_dsn, "primary_dsn": prim_dsn, "summary": summary, "problem": problem,
            "primary_host": primary_host, "primary_port": primary_port,
            "candidate_hostport": url_target(cand_dsn) or "127.0.0.1:%d" % DEFAULT_PORT}
