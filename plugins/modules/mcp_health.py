#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: mcp_health
short_description: Run MCP Platform health checks concurrently (HTTP, MCP handshake, TLS, databases, containers, disk, memory)
version_added: 0.1.0
description:
  - Runs a list of health checks in parallel and reports each one with its status (V(ok), V(warn), V(crit), V(unknown)),
    latency and a one-line reason, plus an overall status, a summary and the matching Nagios plugin exit code.
  - Check types are HTTP(S) endpoints, a real MCP protocol handshake over Streamable HTTP, TCP ports, TLS certificate
    expiry, PostgreSQL (role and replication lag), Redis, MongoDB, platform containers (every replica's state, health
    and restart count), and disk and memory usage.
  - With O(wait=true) the checks are polled until healthy or O(wait_timeout) passes, like C(mcp health --wait --timeout 300).
  - The module only reads; it never changes anything and always reports C(changed=false).
  - Passwords in DSNs, URIs and URLs never appear in the output; they are shown as C(********).
author:
  - mcp.platform maintainers (@mcp-platform)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mcp.platform.health
attributes:
  check_mode:
    support: full
    details: The module is read-only, so the checks run in check mode too.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  concurrency:
    description: How many checks run at the same time.
    type: int
    default: 16
  timeout:
    description: Default per-check timeout in seconds (for each network operation); O(checks[].timeout) overrides it.
    type: float
    default: 5
  wait:
    description:
      - Poll until no check would fail (see O(fail_on); with O(fail_on=never) until no check is V(crit)).
      - Each round re-runs only the checks that are not yet healthy enough.
    type: bool
    default: false
  wait_timeout:
    description: With O(wait=true), give up after this many seconds and fail listing what stayed unhealthy.
    type: float
    default: 300
  interval:
    description: With O(wait=true), seconds between polling rounds.
    type: float
    default: 5
  fail_on:
    description:
      - V(crit) fails the task when any check is V(crit).
      - V(warn) fails it when any check is not V(ok) (V(warn), V(crit) or V(unknown)).
      - V(never) only reports; use RV(status), RV(nagios_code) or RV(failed_checks) in later tasks.
      - The failure message lists only the failing checks, each as C(name) and reason.
    type: str
    choices: [crit, warn, never]
    default: crit
requirements:
  - psycopg2 (pip package C(psycopg2-binary)) or psycopg (for V(postgres) checks)
  - docker (the Docker SDK for Python; for V(container) and V(logs) checks)
  - pymongo (for V(mongodb) checks; only when C(node_python_packages_extra) lists it)
  - cryptography (optional; decodes the certificate of a V(tls) check when present - the standard library does otherwise)
  - the other check types need only the Python standard library
  - the mcp.platform.node role installs them on the managed node (pymongo and cryptography only when
    C(node_python_packages_extra) lists them); run the module with
    C(ansible_python_interpreter=/opt/mcp-platform/venv/bin/python) (the venv the role creates)
notes:
  - The V(mcp) check speaks the protocol with the Python standard library, so the MCP SDK is not needed on the managed node.
  - A check whose library is missing on the managed node is V(unknown), with a reason naming the library, its pip package
    and the role that installs it.
seealso:
  - name: Nagios plugin return codes
    description: The meaning of RV(nagios_code).
    link: https://nagios-plugins.org/doc/guidelines.html#AEN78
"""

EXAMPLES = r"""
- name: Gate a rolling update on one host
  mcp.platform.mcp_health:
    wait: true
    wait_timeout: 300
    interval: 5
    checks:
      - name: filesystem-health
        type: http
        url: "http://{{ ansible_host }}:28080/mcp/filesystem/health"
      - name: filesystem-mcp
        type: mcp
        url: "http://{{ ansible_host }}:28080/mcp/filesystem/mcp"
        expect_version: "{{ version }}"
        min_tools: 1
      - name: filesystem-containers
        type: container
        docker_host: "{{ mcp_docker_host }}"
        service: filesystem
        platform_host: "{{ inventory_hostname }}"
        min_replicas: 2
        max_restarts: 3

- name: Morning checklist, report only
  mcp.platform.mcp_health:
    fail_on: never
    checks:
      - {name: gateway-tls, type: tls, host: "{{ ansible_host }}", port: 28443, warn_days: 30, crit_days: 7}
      - {name: pg-primary, type: postgres, dsn: "postgresql://mcp@db1:5432/mcp_production", password: "{{ vault_pg_password }}",
         expect_role: primary}
      - {name: pg-replica, type: postgres, dsn: "host=db2 port=5432 dbname=mcp_production user=monitor",
         expect_role: replica, max_lag_seconds: 30, max_lag_bytes: 16777216}
      - {name: redis, type: redis, url: "redis://cache1:6379/0", password: "{{ vault_redis_password }}"}
      - {name: mongodb, type: mongodb, uri: "mongodb://monitor:{{ vault_mongo_password }}@mongo1:27017/mcp"}
      - {name: data-disk, type: disk, path: /var/lib/mcp/data, warn_percent: 80, crit_percent: 90}
      - {name: memory, type: memory}
  register: health

- name: Show the summary line
  ansible.builtin.debug:
    msg: "{{ health.summary.text }}"

- name: HTTPS endpoint with a body match and a self-signed certificate
  mcp.platform.mcp_health:
    checks:
      - name: grafana
        type: http
        url: https://grafana.internal:3000/api/health
        validate_certs: false
        status_code: [200]
        body_regex: '"database":\s*"ok"'
        timeout: 10

- name: Fail on warnings too (for example in CI)
  mcp.platform.mcp_health:
    fail_on: warn
    checks:
      - {name: registry, type: tcp, host: 127.0.0.1, port: 25000}
      - {name: root-disk, type: disk, path: /, warn_percent: 85, crit_percent: 95}
"""

RETURN = r"""
checks:
  description: One entry per check, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The check name.
      type: str
      sample: filesystem-mcp
    type:
      description: The check type.
      type: str
      sample: mcp
    status:
      description: V(ok), V(warn), V(crit) or V(unknown) (could not be determined, for example a missing library).
      type: str
      sample: ok
    latency_ms:
      description: How long the probe took, in milliseconds.
      type: float
      sample: 12.4
    reason:
      description: One line explaining the status; passwords masked.
      type: str
      sample: MCP filesystem 1.4.2 (protocol 2025-06-18), 7 tools
    details:
      description:
        - Type-specific facts, for example C(status_code) (http); C(protocol_version), C(server_name), C(server_version),
          C(tool_count), C(tools) (mcp); C(days_left), C(not_after), C(subject) (tls); C(role), C(lag_seconds), C(lag_bytes),
          C(replicas) (postgres); C(replicas) with C(status), C(health), C(restart_count) (container); C(used_percent) (disk, memory).
      type: dict
      sample: {"protocol_version": "2025-06-18", "server_name": "filesystem", "server_version": "1.4.2", "tool_count": 7}
summary:
  description: Counts per status and a one-line text.
  returned: always
  type: dict
  sample: {"ok": 8, "warn": 1, "crit": 1, "unknown": 0, "total": 10, "status": "crit",
           "text": "CRIT - 10 checks: 8 ok, 1 warn (gateway-tls), 1 crit (pg-replica), 0 unknown"}
status:
  description: The worst status (crit > warn > unknown > ok).
  returned: always
  type: str
  sample: warn
nagios_code:
  description: The Nagios plugin exit code of RV(status) (0 ok, 1 warn, 2 crit, 3 unknown).
  returned: always
  type: int
  sample: 1
failed_checks:
  description: Names of the checks that fail according to O(fail_on) (empty with O(fail_on=never)).
  returned: always
  type: list
  elements: str
  sample: [pg-replica]
attempts:
  description: Polling rounds run (1 without O(wait)).
  returned: always
  type: int
  sample: 3
elapsed_s:
  description: Seconds spent, including waiting.
  returned: always
  type: float
  sample: 10.52
timed_out:
  description: Whether O(wait=true) gave up after O(wait_timeout).
  returned: always
  type: bool
  sample: false
"""

import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mcp.platform.plugins.module_utils.health.checks import (
    CheckValidationError,
    check_secrets,
    check_suboptions,
    public_header_values,
    validate_checks,
)
from ansible_collections.mcp.platform.plugins.module_utils.health_runner import FAIL_ON, run_health
from ansible_collections.mcp.platform.plugins.module_utils.secrets import embedded_secrets


def protect_secrets(module):
    """Mask every embedded password in the output; show password-free DSNs/URIs in clear.

    ``dsn``, ``uri`` and ``headers`` are ``no_log`` (so syslog never sees them); a DSN without a
    password, and the value of a header whose name does not look secret, is un-hidden so reports
    can name the database and show the request.
    """
    checks = [c for c in module.params["checks"] or [] if isinstance(c, dict)]
    secrets = set()
    for check in checks:
        secrets |= check_secrets(check)
    for check in checks:
        for value in public_header_values(check) - secrets:
            module.no_log_values.discard(value)
    for check in checks:
        for secret in check_secrets(check):
            module.no_log_values.add(secret)
        for key in ("dsn", "uri"):
            value = check.get(key)
            if isinstance(value, str) and not embedded_secrets(value) and not re.search(r"pass|pwd", value, re.I):
                module.no_log_values.discard(value)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            checks=dict(type="list", elements="dict", required=True, options=check_suboptions()),
            concurrency=dict(type="int", default=16),
            timeout=dict(type="float", default=5),
            wait=dict(type="bool", default=False),
            wait_timeout=dict(type="float", default=300),
            interval=dict(type="float", default=5),
            fail_on=dict(type="str", default="crit", choices=list(FAIL_ON)),
        ),
        supports_check_mode=True,
    )
    protect_secrets(module)
    params = module.params
    for name, low, high in (("concurrency", 1, 1024), ("timeout", 0.001, 3600), ("wait_timeout", 0, 86400), ("interval", 0, 3600)):
        if not low <= params[name] <= high:
            module.fail_json(msg="%s: must be between %s and %s, got %s" % (name, low, high, params[name]))
    if not params["checks"]:
        module.fail_json(msg="checks: at least one check is required")
    try:
        checks = validate_checks(params["checks"], default_timeout=params["timeout"])
    except CheckValidationError as exc:
        module.fail_json(msg=str(exc), option=exc.option)

    res = run_health(checks, concurrency=params["concurrency"], wait=params["wait"], wait_timeout=params["wait_timeout"],
                     interval=params["interval"], fail_on=params["fail_on"])
    failed = res.pop("failed")
    msg = res.pop("msg")
    if failed:
        module.fail_json(msg=msg, changed=False, **res)
    module.exit_json(msg=msg, changed=False, **res)


if __name__ == "__main__":
    main()
