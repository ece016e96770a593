# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mcp.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance windows: persisted state and the Traefik dynamic configuration derived from it.

This file is standard library only and has no Ansible imports, because two programs use it:

* the ``mcp_maintenance`` module (``import ansible_collections.mcp.platform...maintenance``), and
* the maintenance responder (``lab/maintenance/responder.py``), which loads it *by path* and calls
  :func:`reconcile` on every request.

State lives in ``<state_dir>/maintenance.json``::

    {"version": 1,
     "services": {"git": {"since": "...Z", "until": "...Z"|null, "by": "alice", "message": "...",
                          "reason": "...", "retry_after": 300, "bypass_sources": ["10.0.0.0/8"],
                          "bypass_header": {"name": "X-Ops", "value": "..."}|null, ...}},
     "gateway": {"dynamic_dir": "...", "responder_url": "http://...", "service_provider": "docker", ...}}

The gateway file ``<dynamic_dir>/maintenance.yml`` is *derived* from the state (it is rewritten,
never edited). For every gateway service in maintenance it holds a router (priority 10000) for
``PathPrefix(`/mcp/<svc>`)`` on the HTTP and TLS entry points that sends requests to the
``maintenance-responder`` service with an ``X-MCP-Maintenance-Service`` request header, and, when
bypasses are configured, a router with a higher priority (20000) that matches ``ClientIP`` /
``Header`` and goes to the real ``<svc>@<provider>`` service through ``<svc>-strip@<provider>``.
When nothing is in maintenance the file is removed. The file is JSON, which is valid YAML.

Expiry: :func:`reconcile` drops expired entries and rewrites both files. The responder calls it
on every request, so an expired window lifts itself (the first request after expiry gets a 307
back to the same URL and the gateway, which watches the folder, already routes it to the
service) without Ansible running. The ``postgres`` entry is kept when expired (the responder has
no database credentials); the module resets read-only mode on its next run and drops it then.
Every write is atomic (temp file + rename) under an exclusive ``flock`` on
``<state_dir>/.maintenance.lock``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import datetime
import fcntl
import json
import os
import re
import stat
import time

try:
    from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError
except ImportError:  # loaded by path by the maintenance responder, which has only the standard library
    PlatformError = Exception

try:
    from ansible_collections.mcp.platform.plugins.module_utils import gateway_config, validation
except ImportError:  # loaded by path (the maintenance responder): use the sibling files
    import importlib.util as _ilu

    def _sibling(name):
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".py")
        spec = _ilu.spec_from_file_location("mcp_" + name, path)
        mod = _ilu.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    gateway_config = _sibling("gateway_config")
    validation = _sibling("validation")

STATE_FILE = "maintenance.json"
GATEWAY_FILE = "maintenance.yml"
GATEWAY_FILE_MODE = 0o600
LOCK_FILE = ".maintenance.lock"
RESPONDER_SERVICE = gateway_config.RESPONDER_SERVICE
SERVICE_HEADER = gateway_config.SERVICE_HEADER
POSTGRES = "postgres"
DEFAULT_PRIORITY = gateway_config.DEFAULT_PRIORITY
DEFAULT_RETRY_AFTER = 300
SERVICE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}\Z")
HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_|~-]+\Z")

DEFAULT_GATEWAY = dict(dynamic_dir=None, responder_url="http://127.0.0.1:8090", service_provider="docker",
                       http_entrypoint="web", tls_entrypoint="websecure", priority=DEFAULT_PRIORITY)


class MaintenanceError(PlatformError):
    """Bad input or an impossible operation; message for the operator."""


# --------------------------------------------------------------------------- time

def iso(ts):
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(float(ts), tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value):
    """ISO 8601 → epoch seconds. No offset means UTC."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise MaintenanceError("until: %r is not an ISO 8601 time (e.g. 2026-11-25T03:00:00Z)" % (value,))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


# --------------------------------------------------------------------------- files

class StateLock:
    """Exclusive flock on <state_dir>/.maintenance.lock (module and responder serialize on it)."""

    def __init__(self, state_dir):
        self.path = os.path.join(state_dir, LOCK_FILE)
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def empty_state():
    return dict(version=1, services={}, gateway=dict(DEFAULT_GATEWAY))


def load_state(state_dir):
    raw = gateway_config.read_text(os.path.join(state_dir, STATE_FILE))
    state = empty_state()
    if raw is None or not raw.strip():
        return state
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise MaintenanceError("%s is not valid JSON (%s); fix or remove it" % (os.path.join(state_dir, STATE_FILE), exc))
    if not isinstance(data, dict):
        raise MaintenanceError("%s does not hold a JSON object" % os.path.join(state_dir, STATE_FILE))
    state["services"] = dict(data.get("services") or {})
    gw = dict(DEFAULT_GATEWAY)
    gw.update(data.get("gateway") or {})
    state["gateway"] = gw
    return state


def dump_state(state):
    return json.dumps(state, sort_keys=True, indent=2) + "\n"


def save_state(state_dir, state):
    """Atomic write; returns True when the content changed. Mode 0600 (holds the bypass header value)."""
    path = os.path.join(state_dir, STATE_FILE)
    data = dump_state(state)
    if gateway_config.read_text(path) == data:
        return False
    gateway_config.atomic_write(path, data, 0o600)
    return True


# --------------------------------------------------------------------------- rendering

def is_expired(entry, now):
    until = entry.get("until_ts")
    return until is not None and float(until) <= now


def active(state, now=None):
    now = time.time() if now is None else now
    return dict((k, v) for k, v in state["services"].items() if not is_expired(v, now))


def render(state, now=None):
    """Traefik dynamic configuration (dict) for the active gateway entries, or None when there is none."""
    now = time.time() if now is None else now
    entries = dict((k, v) for k, v in active(state, now).items() if k != POSTGRES)
    return gateway_config.render_maintenance(entries, state["gateway"])


def gateway_path(state):
    d = state["gateway"].get("dynamic_dir")
    return os.path.join(d, GATEWAY_FILE) if d else None


def write_gateway(path, text, state_dir=None):
    """The derived gateway file is 0600 like the state it comes from: it holds the bypass header value."""
    try:
        return gateway_config.write_file(path, text, tmp_dir=state_dir, mode=GATEWAY_FILE_MODE)
    except ValueError as exc:
        raise MaintenanceError(str(exc))


def gateway_mode_differs(path):
    try:
        return stat.S_IMODE(os.stat(path).st_mode) != GATEWAY_FILE_MODE
    except OSError:
        return False


def drop_expired(state, now, keep=(POSTGRES,)):
    """Remove expired entries in place (except ``keep``). Returns the dropped names."""
    gone = [k for k, v in state["services"].items() if is_expired(v, now) and k not in keep]
    for k in gone:
        del state["services"][k]
    return sorted(gone)


def reconcile(state_dir, dynamic_dir=None, now=None):
    """Drop expired entries, then rewrite the state and the gateway file so they agree.

    Safe to call from anywhere at any time (the responder calls it on every request).
    Returns dict(changed, expired, gateway_file, active).
    """
    now = time.time() if now is None else now
    with StateLock(state_dir):
        state = load_state(state_dir)
        if dynamic_dir:
            state["gateway"]["dynamic_dir"] = dynamic_dir
        gone = drop_expired(state, now)
        path = gateway_path(state)
        changed = write_gateway(path, gateway_config.gateway_text(render(state, now)), state_dir)
        if gone:
            changed = save_state(state_dir, state) or changed
    return dict(changed=changed, expired=gone, gateway_file=path, active=sorted(active(state, now)))


# --------------------------------------------------------------------------- planning (used by the module)

def validate_services(services, known):
    bad = [s for s in services if not SERVICE_NAME_RE.match(s or "")]
    if bad:
        raise MaintenanceError("services: invalid name(s) %s (lower case letters, digits, '-', '_', '.')" % ", ".join(map(repr, bad)))
    if known:
        allowed = set(known) | {POSTGRES}
        unknown = [s for s in services if s not in allowed]
        if unknown:
            raise MaintenanceError("services: unknown service(s) %s; known services: %s"
                                   % (", ".join(unknown), ", ".join(sorted(allowed))))


def build_entry(existing, message, reason, by, retry_after, ttl, until, bypass_sources, bypass_header, now):
    """The entry to store for one service; keeps ``since``/``by`` when nothing that matters changed."""
    if ttl is not None and until is not None:
        raise MaintenanceError("ttl and until are mutually exclusive")
    try:
        if ttl is not None:
            validation.seconds("ttl", ttl)
        if retry_after is not None:
            validation.number("retry_after", retry_after, minimum=0, maximum=validation.MAX_SECONDS)
        for source in bypass_sources or []:
            validation.cidr("bypass_sources", source)
    except validation.ValidationError as exc:
        raise MaintenanceError(str(exc))
    if bypass_header:
        if not HEADER_NAME_RE.match(bypass_header.get("name") or ""):
            raise MaintenanceError("bypass_header.name: %r is not a valid header name" % (bypass_header.get("name"),))
        if not bypass_header.get("value") or "`" in bypass_header["value"]:
            raise MaintenanceError("bypass_header.value must be non-empty and contain no backtick")
    live = existing if existing and not is_expired(existing, now) else None
    since_ts = float(live["since_ts"]) if live else now
    if until is not None:
        until_ts = parse_time(until)
        if until_ts <= now:
            raise MaintenanceError("until %s is in the past" % until)
    elif ttl is not None:
        until_ts = since_ts + float(ttl)
    else:
        until_ts = None
    entry = dict(message=message, reason=reason or message,
                 retry_after=int(retry_after) if retry_after is not None else DEFAULT_RETRY_AFTER,
                 until=iso(until_ts), until_ts=until_ts,
                 bypass_sources=list(bypass_sources or []),
                 bypass_header=dict(name=bypass_header["name"], value=bypass_header["value"]) if bypass_header else None)
    if live:
        same = all(live.get(k) == v for k, v in entry.items())
        if same:
            return copy.deepcopy(live)
    entry.update(since=iso(since_ts), since_ts=since_ts, by=by)
    return entry


def public_entry(entry, now=None):
    """An entry for results and diffs: no header value, plus remaining time."""
    now = time.time() if now is None else now
    out = dict((k, v) for k, v in entry.items() if not k.endswith("_ts"))
    if out.get("bypass_header"):
        out["bypass_header"] = dict(name=out["bypass_header"].get("name"), value="********")
    until = entry.get("until_ts")
    out["expires_in"] = None if until is None else max(0, int(round(float(until) - now)))
    out["expired"] = is_expired(entry, now)
    return out


def public_services(state, now=None):
    return dict((k, public_entry(v, now)) for k, v in sorted(state["services"].items()))


def retry_after_for(entry, now=None):
    now = time.time() if now is None else now
    if entry.get("retry_after"):
        ra = int(entry["retry_after"])
        if entry.get("until_ts") is not None:
            ra = min(ra, max(1, int(float(entry["until_ts"]) - now + 0.999)))
        return ra
    if entry.get("until_ts") is not None:
        return max(1, int(float(entry["until_ts"]) - now + 0.999))
    return DEFAULT_RETRY_AFTER


def _gateway_settings(state, settings):
    gw = dict(state["gateway"])
    for k, v in (settings or {}).items():
        if v is not None:
            gw[k] = v
    if gw.get("service_provider") not in ("docker", "file"):
        raise MaintenanceError("service_provider must be docker or file (got %r)" % (gw.get("service_provider"),))
    if not re.match(r"^https?://[^\s/]+", gw.get("responder_url") or ""):
        raise MaintenanceError("responder_url must be an http(s) URL (got %r)" % (gw.get("responder_url"),))
    try:
        validation.number("priority", gw.get("priority"), minimum=1, maximum=10 ** 9, integer=True)
    except validation.ValidationError as exc:
        raise MaintenanceError(str(exc))
    return gw


def manage(state_dir, action, services=None, known_services=None, message=None, reason=None, by=None,
           retry_after=None, ttl=None, until=None, bypass_sources=None, bypass_header=None, gateway=None,
           postgres=None, now=None, check_mode=False):
    """Enable / disable / report maintenance. The one entry point of the module.

    ``postgres``: None (no database handling) or an object with ``get() -> bool`` (read-only now?)
    and ``set(bool)``; it is used when ``postgres`` is among the services (or expired in the state).
    Returns dict(changed, services (public entries after), before, after, gateway_file,
    gateway_changed, postgres_read_only, expired, msg).
    """
    now = time.time() if now is None else now
    if action not in ("enabled", "disabled", "status"):
        raise MaintenanceError("state must be enabled, disabled or status")
    if not os.path.isdir(state_dir):
        if action == "status" or (action == "disabled" and postgres is None):
            return dict(changed=False, services={}, in_maintenance=[], expired=[], before={}, after={},
                        postgres_read_only=None, gateway_file=None, gateway_changed=False, state_changed=False,
                        postgres_changed=False, gateway_file_present=False,
                        msg="no service in maintenance (state_dir %s does not exist)" % state_dir)
        raise MaintenanceError("state_dir %s does not exist" % state_dir)
    known = list(known_services or [])
    if services is not None:
        validate_services(services, known)
    with StateLock(state_dir):
        state = load_state(state_dir)
        before = copy.deepcopy(state)
        if action == "status":
            pg_ro = postgres.get() if postgres is not None else None
            return dict(changed=False, services=public_services(active_state(state, now), now),
                        in_maintenance=sorted(active(state, now)),
                        expired=sorted(k for k, v in state["services"].items() if is_expired(v, now)),
                        postgres_read_only=pg_ro, gateway_file=gateway_path(state),
                        gateway_file_present=bool(gateway_path(state) and os.path.exists(gateway_path(state))),
                        msg=summary(state, now, pg_ro))
        state["gateway"] = _gateway_settings(state, gateway)
        expired = drop_expired(state, now, keep=() if postgres is not None else (POSTGRES,))
        pg_target = None  # desired read-only value, None = leave alone
        if action == "enabled":
            targets = list(services) if services is not None else known
            if not targets:
                raise MaintenanceError("services: nothing to put in maintenance (give services or known_services)")
            if message is None or not str(message).strip():
                raise MaintenanceError("msg (the message shown to clients) is required with state=enabled")
            for svc in targets:
                state["services"][svc] = build_entry(state["services"].get(svc), message, reason, by, retry_after,
                                                     ttl, until, bypass_sources, bypass_header, now)
            if POSTGRES in targets:
                if postgres is None:
                    raise MaintenanceError("postgres_dsn is required to put postgres in maintenance (read-only)")
                pg_target = True
        else:
            if services is not None:
                targets = list(services)
            else:
                targets = sorted(set(state["services"]) | set(known))
            for svc in targets:
                state["services"].pop(svc, None)
            if POSTGRES in targets or POSTGRES in expired:
                if postgres is None and POSTGRES in before["services"]:
                    raise MaintenanceError("postgres_dsn is required to take postgres out of maintenance")
                if postgres is not None:
                    pg_target = False
        if POSTGRES in expired and postgres is not None:
            pg_target = False
        pg_now = postgres.get() if postgres is not None and (pg_target is not None or POSTGRES in state["services"]) else None
        pg_change = pg_target is not None and pg_now is not None and pg_now != pg_target
        text = gateway_config.gateway_text(render(state, now))
        gpath = gateway_path(state)
        g_change = gpath is not None and (gateway_config.read_text(gpath) != text or gateway_mode_differs(gpath))
        s_change = dump_state(state) != dump_state(before)
        changed = s_change or g_change or pg_change
        if not check_mode:
            # Enable: the gateway file first, so the state never says "in maintenance" while nothing answers 503.
            # Disable: the state first; if the gateway file then cannot be written, the 503s it still serves reach the
            # responder, whose reconcile() rewrites the file from the state.
            writes = [(g_change, lambda: write_gateway(gpath, text, state_dir)), (s_change, lambda: save_state(state_dir, state))]
            if action != "enabled":
                writes.reverse()
            for needed, write in writes:
                if needed:
                    write()
            if pg_change:
                postgres.set(pg_target)
        pg_after = pg_target if pg_change else pg_now
        return dict(changed=changed, services=public_services(state, now), in_maintenance=sorted(active(state, now)),
                    before=public_services(before, now), after=public_services(state, now),
                    gateway_file=gpath, gateway_changed=g_change, state_changed=s_change,
                    postgres_read_only=pg_after, postgres_changed=pg_change, expired=expired,
                    msg=("%s%s" % ("would change: " if check_mode and changed else "", summary(state, now, pg_after))))


def active_state(state, now):
    out = dict(state)
    out["services"] = active(state, now)
    return out


def summary(state, now=None, pg_ro=None):
    act = active(state, now)
    if not act:
        text = "no service in maintenance"
    else:
        text = "in maintenance: " + ", ".join(
            "%s (since %s%s, by %s)" % (k, v.get("since"), ", until %s" % v["until"] if v.get("until") else "", v.get("by"))
            for k, v in sorted(act.items()))
    if pg_ro is not None:
        text += "; postgres default_transaction_read_only=%s" % ("on" if pg_ro else "off")
    return text
