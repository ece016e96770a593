#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mcp.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mcp_maintenance
version_added: 0.1.0
short_description: Put MCP services (and PostgreSQL) in or out of maintenance
description:
  - Enables, disables or reports maintenance windows for the whole MCP Platform or named services.
  - For every service in maintenance the gateway (Traefik) answers C(503) with the message and a
    C(Retry-After) header. The module writes one file, C(maintenance.yml), into Traefik's dynamic
    file-provider folder with a router of higher priority than the Docker-label router of the
    service, pointing to the maintenance responder (C(lab/maintenance/responder.py)), and optional
    bypass routers (client networks or a secret header) that still reach the real service.
  - The gateway file holds the bypass header value, so it is written with mode C(0600) like the state, and Traefik must
    read it as its owner (the platform's Traefik runs as root in its container).
  - The window is persisted in C(<state_dir>/maintenance.json) (who, since, until, why), so it
    survives Traefik and host restarts. An expiry (O(ttl) or O(until)) is enforced without Ansible;
    the responder drops expired windows and rewrites the gateway file on the next request; the
    module does the same on every run.
  - V(postgres) in O(services) puts the database in read-only mode
    (C(ALTER SYSTEM SET default_transaction_read_only = on) and C(pg_reload_conf())) and back
    (C(ALTER SYSTEM RESET)). Sessions that are already open keep their setting; new ones are
    read-only. An expired V(postgres) window is reset on the next module run (the responder has no
    database credentials).
  - The database is the primary that O(postgres_dsn) and the other connection options (or the C(PGHOST)
    environment variable) name; it is reached only when one of them is set.
author:
  - mcp.platform maintainers (@mcp-platform)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mcp.platform.postgres
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  state:
    description:
      - V(enabled) puts O(services) in maintenance (changing the message or expiry of a window that is on).
      - V(disabled) lifts it (all services in maintenance when O(services) is omitted).
      - V(status) reports and changes nothing.
    type: str
    choices: [enabled, disabled, status]
    default: status
  services:
    description:
      - Services to act on. Defaults to O(known_services) for V(enabled) and to every service in
        maintenance (plus O(known_services)) for V(disabled).
      - V(postgres) means the database (read-only mode) and is always accepted.
    type: list
    elements: str
  known_services:
    description:
      - The platform's services (usually C(mcp_services)). When given, any other name in
        O(services) fails with the list of known ones.
    type: list
    elements: str
  msg:
    description:
      - The message shown to clients (in the 503 body), required with O(state=enabled).
      - Changing it for a window that is on takes effect at once (the responder reads the state on every request).
    type: str
  reason:
    description: Why (for the record and status). Defaults to O(msg).
    type: str
  by:
    description: Who enables it (recorded). Defaults to the user running the module.
    type: str
  retry_after:
    description: Seconds for the C(Retry-After) header (capped by the time left when an expiry is set).
    type: int
    default: 300
  ttl:
    description:
      - Expiry, seconds after the window started. Re-running with the same O(ttl) does not extend it.
      - Mutually exclusive with O(until).
    type: int
  until:
    description: Expiry as an ISO 8601 time (no offset means UTC). Mutually exclusive with O(ttl).
    type: str
  bypass_sources:
    description: Client networks (CIDR or address) that still reach the service during maintenance.
    type: list
    elements: str
    default: []
  bypass_header:
    description: A request header that still reaches the service during maintenance.
    type: dict
    suboptions:
      name:
        description: Header name.
        type: str
        required: true
      value:
        description: Header value (secret; never returned).
        type: str
        required: true
  state_dir:
    description: The host's state folder; the window is kept in C(maintenance.json) there.
    type: path
    default: /var/lib/mcp
  gateway_dynamic_dir:
    description: Traefik's dynamic file-provider folder. Defaults to C(<state_dir>/gateway/dynamic).
    type: path
  responder_url:
    description: URL of the maintenance responder backend.
    type: str
    default: http://127.0.0.1:8090
  service_provider:
    description:
      - Traefik provider that defines the real services and their C(<service>-strip) middlewares
        (used by bypass routers as C(<service>@<provider>)).
    type: str
    choices: [docker, file]
    default: docker
  http_entrypoint:
    description: Traefik HTTP entry point name.
    type: str
    default: web
  tls_entrypoint:
    description: Traefik TLS entry point name; empty string for none.
    type: str
    default: websecure
  priority:
    description: Priority of the maintenance routers (bypass routers get twice this).
    type: int
    default: 10000
requirements:
  - psycopg2 (pip package C(psycopg2-binary)) or psycopg; only when the database is used (O(postgres_dsn), another
    connection option or C(PGHOST))
  - the mcp.platform.node role installs it on the managed node; run the module with
    C(ansible_python_interpreter=/opt/mcp-platform/venv/bin/python) (the venv the role creates)
notes:
  - The responder must run on the host, reading C(<state_dir>/maintenance.json) and able to write
    C(<state_dir>) and O(gateway_dynamic_dir) (it enforces expiry).
seealso:
  - module: mcp.platform.mcp_failover
"""

EXAMPLES = r"""
- name: Put git and filesystem in maintenance for an hour
  mcp.platform.mcp_maintenance:
    state: enabled
    services: [git, filesystem]
    known_services: "{{ mcp_services }}"
    msg: Database upgrade, back at 03:30 UTC
    ttl: 3600
    retry_after: 600
    bypass_sources: [10.20.0.0/16]
    by: "{{ lookup('env', 'USER') }}"

- name: Whole platform plus database read-only, with an ops header bypass
  mcp.platform.mcp_maintenance:
    state: enabled
    known_services: "{{ mcp_services + ['postgres'] }}"
    msg: Planned maintenance
    until: "2026-11-25T04:00:00Z"
    bypass_header:
      name: X-MCP-Ops
      value: "{{ vault_mcp_ops_bypass }}"
    postgres_dsn: "{{ mcp_postgres_admin_dsn }}"

- name: What is in maintenance?
  mcp.platform.mcp_maintenance:
    state: status
  register: maint

- name: End maintenance everywhere
  mcp.platform.mcp_maintenance:
    state: disabled
    postgres_dsn: "{{ mcp_postgres_admin_dsn }}"
"""

RETURN = r"""
in_maintenance:
  description: Services in maintenance after the run (active windows).
  returned: always
  type: list
  elements: str
  sample: [git, postgres]
services:
  description: Per service in maintenance, the recorded window (bypass header value masked).
  returned: always
  type: dict
  sample:
    git:
      since: "2026-11-25T02:00:00Z"
      until: "2026-11-25T03:00:00Z"
      by: alice
      message: Database upgrade
      reason: Database upgrade
      retry_after: 600
      expires_in: 3540
      expired: false
      bypass_sources: [10.20.0.0/16]
      bypass_header: null
expired:
  description: Windows found expired and dropped during this run.
  returned: always
  type: list
  elements: str
postgres_read_only:
  description: C(default_transaction_read_only) of the database after the run (null when not checked).
  returned: always
  type: bool
gateway_file:
  description: Path of the Traefik dynamic file the module owns.
  returned: always
  type: str
  sample: /var/lib/mcp/gateway/dynamic/maintenance.yml
gateway_changed:
  description: Whether the gateway file was (or in check mode would be) rewritten.
  returned: when state is enabled or disabled
  type: bool
msg:
  description: One-line summary.
  returned: always
  type: str
"""

import getpass
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mcp.platform.plugins.module_utils import maintenance, postgres
from ansible_collections.mcp.platform.plugins.module_utils.node_requirements import missing_library_msg
from ansible_collections.mcp.platform.plugins.module_utils.secrets import mask_text


class _Postgres:
    def __init__(self, dsn, timeout):
        self.dsn = dsn
        self.timeout = timeout

    def get(self):
        return postgres.get_read_only(self.dsn, self.timeout)

    def set(self, value):
        postgres.set_read_only(self.dsn, value, self.timeout)


def _wants_database(params, environ):
    """The database is used when a connection option is given, or PGHOST names one (PGPASSWORD alone does not)."""
    options = [name for name in postgres.postgres_argument_spec() if name != "connect_timeout"]
    return any(params.get(name) not in (None, "") for name in options) or bool(environ.get("PGHOST"))


def main():
    argument_spec = dict(
        state=dict(type="str", default="status", choices=["enabled", "disabled", "status"]),
        services=dict(type="list", elements="str"),
        known_services=dict(type="list", elements="str"),
        msg=dict(type="str"),
        reason=dict(type="str"),
        by=dict(type="str"),
        retry_after=dict(type="int", default=300),
        ttl=dict(type="int"),
        until=dict(type="str"),
        bypass_sources=dict(type="list", elements="str", default=[], no_log=False),
        bypass_header=dict(type="dict", no_log=False, options=dict(
            name=dict(type="str", required=True),
            value=dict(type="str", required=True, no_log=True))),
        state_dir=dict(type="path", default="/var/lib/mcp"),
        gateway_dynamic_dir=dict(type="path"),
        responder_url=dict(type="str", default="http://127.0.0.1:8090"),
        service_provider=dict(type="str", default="docker", choices=["docker", "file"]),
        http_entrypoint=dict(type="str", default="web"),
        tls_entrypoint=dict(type="str", default="websecure"),
        priority=dict(type="int", default=10000),
    )
    argument_spec.update(postgres.postgres_argument_spec())
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[["ttl", "until"]],
        required_if=[["state", "enabled", ["msg"]]],
        supports_check_mode=True,
    )
    p = module.params
    dsn = None
    if _wants_database(p, os.environ):
        if not postgres.HAS_DRIVER:
            module.fail_json(msg=missing_library_msg("psycopg2", reason="for postgres_dsn"),
                             exception=str(postgres.DRIVER_IMPORT_ERROR))
        try:
            dsn = postgres.resolve_dsn(p)
        except postgres.PostgresError as exc:
            module.fail_json(msg=str(exc))
    dynamic_dir = p["gateway_dynamic_dir"] or os.path.join(p["state_dir"], "gateway", "dynamic")
    gateway = dict(dynamic_dir=dynamic_dir, responder_url=p["responder_url"], service_provider=p["service_provider"],
                   http_entrypoint=p["http_entrypoint"], tls_entrypoint=p["tls_entrypoint"] or "",
                   priority=p["priority"])
    try:
        by = p["by"] or getpass.getuser()
    except Exception:  # pylint: disable=broad-except
        by = str(os.getuid())
    try:
        res = maintenance.manage(
            p["state_dir"], p["state"], services=p["services"], known_services=p["known_services"],
            message=p["msg"], reason=p["reason"], by=by, retry_after=p["retry_after"], ttl=p["ttl"],
            until=p["until"], bypass_sources=p["bypass_sources"], bypass_header=p["bypass_header"], gateway=gateway,
            postgres=_Postgres(dsn, p["connect_timeout"]) if dsn else None, check_mode=module.check_mode)
    except maintenance.MaintenanceError as exc:
        module.fail_json(msg=str(exc))
    except postgres.PostgresError as exc:
        module.fail_json(msg=mask_text(str(exc), postgres.dsn_secrets(dsn)))
    except postgres.DRIVER_ERRORS as exc:
        module.fail_json(msg="PostgreSQL (%s): %s" % (postgres.describe_dsn(dsn), postgres.error_text(exc, dsn)))
    except (IOError, OSError) as exc:
        module.fail_json(msg="cannot update maintenance state: %s" % exc)
    result = dict(changed=res["changed"], in_maintenance=res["in_maintenance"], services=res["services"],
                  expired=res.get("expired", []), postgres_read_only=res["postgres_read_only"],
                  gateway_file=res["gateway_file"], msg=res["msg"])
    if p["state"] != "status":
        result["gateway_changed"] = res["gateway_changed"]
        if module._diff and res["changed"]:
            result["diff"] = dict(before=dict(services=res["before"]), after=dict(services=res["after"]))
            if res.get("postgres_changed"):
                result["diff"]["before"]["postgres_read_only"] = not res["postgres_read_only"]
                result["diff"]["after"]["postgres_read_only"] = res["postgres_read_only"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
