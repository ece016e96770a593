#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mcp.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mcp_failover
version_added: 0.1.0
short_description: Promote a PostgreSQL replica safely, and rejoin the old primary
description:
  - The Database Failover Runbook as one safe operation.
  - O(state=promoted) checks every gate and reports each in RV(gates) - C(primary_down) (a strict
    majority of the vantage points - the controller and every entry of O(primary_down_confirmations)
    - report that the old primary refuses connections or times out, the controller among them; or
    O(fenced=true); see the notes), C(candidate_in_recovery)
    (C(pg_is_in_recovery()) on the candidate) and C(lag) (received-but-not-replayed WAL within
    O(max_lag_bytes), replay delay within O(max_lag_seconds)). It refuses with the failing gates
    named unless O(force=true), then runs C(pg_promote(true, wait_seconds)) (resuming a paused
    replay first), waits until the new primary accepts writes and reports it, its timeline and
    the RPO estimate (lag at promotion). A candidate that is already a primary gives
    C(changed=false), unless the old primary also accepts writes (split brain), which fails.
  - O(state=rejoined) turns the old primary (O(data_dir) on this host) into a streaming replica of
    the new one (O(candidate_dsn)) - checks the rewind prerequisites with C(pg_controldata)
    (C(wal_log_hints) or data checksums, timeline fork), stops it if it runs, runs
    C(pg_rewind -R), starts it and waits until it streams. When rewinding is impossible or fails
    and O(allow_reclone=true), the data folder is moved aside (never deleted) and cloned afresh
    with C(pg_basebackup -R). A node that already streams from the new primary gives
    C(changed=false).
  - O(state=rejoined) first plans (it only reads - the new primary, the node's WAL receiver,
    C(pg_controldata), C(pg_ctl status)), then applies the plan; RV(plan) holds the ordered steps,
    each with its reason and what it changes. In check mode the plan is returned and nothing is done.
  - O(state=status) evaluates the gates and changes nothing.
  - Connection strings are never shown; every message is masked.
author:
  - mcp.platform maintainers (@mcp-platform)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: >-
      Every gate (or rejoin prerequisite) is evaluated; RV(msg) says what would be done, and for
      O(state=rejoined) RV(plan) holds the steps that would be taken.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  state:
    description: What to do.
    type: str
    choices: [promoted, rejoined, status]
    default: status
  primary_dsn:
    description:
      - libpq connection string of the old primary. Probed for C(primary_down) with O(state=promoted);
        the node to turn into a replica with O(state=rejoined) (defaults to
        C(host=127.0.0.1 port=<port> user=postgres dbname=postgres) there).
    type: str
  candidate_dsn:
    description: libpq connection string of the replica to promote (the new primary for O(state=rejoined)).
    type: str
    required: true
  postgres_password:
    description:
      - Password for the DSNs that carry none (O(primary_dsn), O(candidate_dsn) and the default node DSN of
        O(state=rejoined)); a password inside a DSN wins.
      - When omitted, the C(PGPASSWORD) environment variable is used the same way (for example an AWX
        credential), so it is known and masked in every message.
      - Never logged.
    type: str
  primary_down_confirmations:
    description:
      - What the other vantage points (for example each MCP host) see of the old primary, one item per
        vantage point, supplied by the playbook. Together with the controller's own probe of
        O(primary_dsn) they vote on C(primary_down) (see the notes). Give B(every) vantage point, also
        those that could not be asked - an item that is left out shrinks the electorate.
      - A dict C({name, down, detail}) - C(name) names the vantage point in RV(gates) and
        RV(vantage_points) (default C(vantage-<position>), 1-based; names must be unique and
        V(controller) is the module's own probe), C(down) is true when the primary cannot be reached
        from there, C(detail) (optional) says why. Instead of C(down), a registered result may carry
        C(reachable) or C(is_available) (true = the primary is up) or C(failed) (a probe that fails
        when the primary cannot be reached, such as C(ansible.builtin.wait_for)); its C(msg) is the
        detail when C(detail) is absent.
      - "A vantage point that could not be asked is C({name, unreachable: true}) (a registered result
        of an unreachable host carries C(unreachable: true) too; a registered C(skipped: true) result
        counts the same). It does not confirm, but stays in the number of vantage points."
      - A bare boolean or the string V(true)/V(false) (V(yes)/V(no), V(down)/V(up)) is accepted too
        (true = down), named C(vantage-<position>).
      - An item that fits none of these fails the module, naming the item.
    type: list
    elements: raw
    default: []
  min_confirmations:
    description:
      - How many vantage points B(besides the controller) must report the primary down, on top of the
        majority rule (see the notes). The default V(1) means a second vantage point is always needed;
        V(0) lets the controller decide alone when O(primary_down_confirmations) is empty.
    type: int
    default: 1
  fenced:
    description: The old primary is fenced (powered off, isolated); C(primary_down) passes.
    type: bool
    default: false
  max_lag_bytes:
    description: Largest received-but-not-replayed WAL, in bytes, to promote without O(force).
    type: int
    default: 16777216
  max_lag_seconds:
    description: Largest replay delay, in seconds, to promote without O(force).
    type: float
    default: 30
  force:
    description: Promote even when gates fail (they are still reported).
    type: bool
    default: false
  wait_seconds:
    description: Seconds to wait for the promotion, or for the rejoined node to stream.
    type: int
    default: 60
  connect_timeout:
    description: Seconds for each connection attempt (and the C(primary_down) probe).
    type: int
    default: 5
  data_dir:
    description: Data folder of the old primary on this host (O(state=rejoined)).
    type: path
  port:
    description: Port the rejoined node listens on (passed as C(-o "-p PORT"), never written to config).
    type: int
    default: 5432
  bin_dir:
    description: Folder holding C(pg_ctl), C(pg_rewind), C(pg_controldata), C(pg_basebackup).
    type: path
    default: /usr/lib/postgresql/15/bin
  os_user:
    description: OS user that owns the cluster; commands run as this user when the module runs as root.
    type: str
    default: postgres
  log_file:
    description: Server log file for C(pg_ctl start -l). Defaults to C(<data_dir>/../<basename>.log).
    type: path
  allow_reclone:
    description: When C(pg_rewind) is impossible or fails, move O(data_dir) aside and clone with C(pg_basebackup -R).
    type: bool
    default: false
  replication_conninfo:
    description:
      - C(primary_conninfo) to write for the rejoined node instead of the one C(pg_rewind -R) derives
        (for example with C(passfile) or a replication user).
    type: str
notes:
  - "The C(primary_down) rule: the vantage points are the controller (the module's own probe of O(primary_dsn))
    plus every item of O(primary_down_confirmations), those that could not be asked included. The gate passes
    when (1) strictly more than half of all vantage points report the primary down (C(down > total / 2);
    2 of 4 is refused, 3 of 4 passes, 2 of 3 passes), (2) the controller is one of them and (3) at least
    O(min_confirmations) vantage points besides the controller report it down. O(fenced=true) passes it
    regardless (the vote is still reported)."
  - "Why the controller must see it down: the promotion and the repointing run from the controller, so an old
    primary the controller still reaches is alive and reachable from where we act; promoting would make two
    primaries. Fence it (stop it, cut it off) and pass O(fenced=true), or run a switchover, instead."
  - "An item with C(unreachable: true) (a vantage point that could not be asked) never counts as down: a partition
    that cuts the controller off from an MCP host and the primary therefore needs the remaining majority."
  - "The C(primary_down) gate's detail names the vantage points that still see the primary, those that could not be
    asked and those it is down from, for example \"2 of 4 vantage points report the primary down (a majority, 3,
    is required); still see it: mcp-2, mcp-3; down from: controller, mcp-1; controller: connection refused\"."
requirements:
  - psycopg2 (pip package C(psycopg2-binary)) or psycopg
  - PostgreSQL server binaries on the host for O(state=rejoined)
seealso:
  - module: mcp.platform.mcp_maintenance
  - module: mcp.platform.mcp_lock
"""

EXAMPLES = r"""
- name: Is the primary down from the replica's host too?
  ansible.builtin.wait_for:
    host: "{{ mcp_pg_primary_host }}"
    port: 5432
    timeout: 5
  delegate_to: "{{ groups['mcp_db_replica'][0] }}"
  register: seen_from_replica
  ignore_errors: true

- name: Promote the replica
  mcp.platform.mcp_failover:
    state: promoted
    primary_dsn: "host={{ mcp_pg_primary_host }} port=5432 user=postgres dbname=postgres"
    candidate_dsn: "host={{ mcp_pg_replica_host }} port=5432 user=postgres dbname=postgres"
    postgres_password: "{{ vault_pg_password }}"   # for both DSNs (PGPASSWORD when omitted)
    primary_down_confirmations:
      - name: "{{ groups['mcp_db_replica'][0] }}"
        down: "{{ seen_from_replica is failed }}"   # wait_for failed: the port could not be reached
        detail: "{{ seen_from_replica.msg | default('port reachable') }}"
  register: failover

# Several vantage points: the controller and every MCP host of the play. A strict majority must report
# the primary down, the controller among them; a host that dropped out of the play (unreachable, failed)
# is passed as not confirming, so it cannot shrink the electorate.
- name: Is the primary down from each MCP host?
  ansible.builtin.wait_for:
    host: "{{ mcp_pg_primary_host }}"
    port: 5432
    timeout: 5
  register: seen
  ignore_errors: true

- name: Promote when a majority of the vantage points agree
  mcp.platform.mcp_failover:
    state: promoted
    primary_dsn: "{{ primary_dsn }}"
    candidate_dsn: "{{ candidate_dsn }}"
    primary_down_confirmations: >-
      {% set out = [] %}{% for h in ansible_play_hosts_all %}{% set _ = out.append(
         {'name': h, 'down': hostvars[h].seen is failed, 'detail': hostvars[h].seen.msg | default('port reachable')}
         if h in ansible_play_hosts else {'name': h, 'unreachable': true}) %}{% endfor %}{{ out }}
  delegate_to: localhost
  run_once: true
  register: failover

- name: Rejoin the old primary as a replica
  mcp.platform.mcp_failover:
    state: rejoined
    candidate_dsn: "host={{ mcp_pg_replica_host }} port=5432 user=postgres dbname=postgres"
    data_dir: /var/lib/postgresql/15/main
    port: 5432
    allow_reclone: true
  delegate_to: "{{ mcp_pg_primary_host }}"
"""

RETURN = r"""
gates:
  description: Each failover gate with its verdict.
  returned: when state is promoted or status
  type: list
  elements: dict
  sample:
    - {name: primary_down, passed: true, detail: "3 of 4 vantage points report the primary down (a majority, 3, is required);
        could not be asked: mcp-2; down from: controller, mcp-1, mcp-3; controller: connection refused"}
    - {name: candidate_in_recovery, passed: true, detail: "pg_is_in_recovery() = true on 10.0.0.2:5432/postgres"}
    - {name: lag, passed: true, detail: "received-but-not-replayed 0 bytes (limit 16777216), replay delay 0 s (limit 30 s)"}
vantage_points:
  description:
    - The C(primary_down) vote, one entry per vantage point - the controller first, then each item of
      O(primary_down_confirmations) in order (also with O(fenced=true), where the vote is not needed).
  returned: when state is promoted or status
  type: list
  elements: dict
  contains:
    name:
      description: V(controller), the item's C(name), or C(vantage-<position>).
      type: str
    status:
      description: V(down), V(up) (still sees the primary) or V(unknown) (could not be asked, or no verdict).
      type: str
    down:
      description: Whether it counts as reporting the primary down (RV(vantage_points[].status) is V(down)).
      type: bool
    detail:
      description: Why (the probe's reason, the item's C(detail) or C(msg)); passwords masked.
      type: str
  sample:
    - {name: controller, status: down, down: true, detail: "connection refused"}
    - {name: mcp-1, status: down, down: true, detail: "10.0.0.1:5432: timed out after 3s"}
    - {name: mcp-2, status: unknown, down: false, detail: "not in the play any more (unreachable or failed)"}
    - {name: mcp-3, status: up, down: false, detail: "10.0.0.1:5432 accepts connections"}
new_primary:
  description: host:port/dbname of the (new) primary.
  returned: when state is promoted or status
  type: str
timeline:
  description: Timeline of the new primary (or of the rejoined node).
  returned: success
  type: int
rpo_bytes:
  description: WAL received but not replayed when promoting (data at risk, bytes).
  returned: when state is promoted
  type: int
rpo_seconds:
  description: Replay delay when promoting (seconds; null when unknown).
  returned: when state is promoted
  type: float
forced:
  description: Whether failing gates were overridden with O(force).
  returned: when state is promoted
  type: bool
already_promoted:
  description: The candidate was already a primary.
  returned: when state is promoted
  type: bool
duration:
  description: Seconds the operation took.
  returned: success
  type: float
method:
  description: >-
    How the node was rejoined: V(rewind), V(reclone), or V(resume) (a rejoin interrupted after its rewind, only
    started now); null when nothing was done.
  returned: when state is rejoined
  type: str
steps:
  description: Steps taken (or planned in check mode, the actions of RV(plan)) for the rejoin.
  returned: when state is rejoined
  type: list
  elements: str
plan:
  description:
    - What the rejoin decided before doing anything (in check mode, all that is done).
  returned: when state is rejoined
  type: dict
  contains:
    needed:
      description: Whether anything is to be done (false when the node already streams from the new primary).
      type: bool
    method:
      description: V(rewind) or V(reclone); null when nothing is needed.
      type: str
    steps:
      description:
        - The steps in order, each C({action, reason, changes}); C(action) is one of V(stop), V(resume),
          V(checkpoint_source), V(rewind), V(reclone), V(primary_conninfo), V(start), V(wait_streaming).
        - A V(rewind) step has C(fallback) (V(reclone) when O(allow_reclone=true), else null).
      type: list
      elements: dict
    prerequisites:
      description: As RV(prerequisites).
      type: dict
    node_state:
      description: >-
        The node as found - reachable, in_recovery, wal_receiver, sender, timeline, running, standby_signal,
        cluster_state.
      type: dict
    options:
      description: The settings the steps run with (data_dir, port, bin_dir, os_user, log_file, ...); no secrets.
      type: dict
  sample:
    needed: true
    method: rewind
    steps:
      - action: stop
        reason: the server runs as a primary (it takes writes the new primary never sees); pg_rewind needs it stopped
        changes: pg_ctl stop -m fast on /var/lib/postgresql/15/main
      - action: rewind
        reason: "wal_log_hints on, node timeline 1, source timeline 2: pg_rewind can run"
        changes: "pg_rewind -R on /var/lib/postgresql/15/main: writes the old primary took after the fork are ..."
        fallback: null
      - action: start
        reason: the node runs again, now as a standby of the source
        changes: pg_ctl start on port 5432
      - action: wait_streaming
        reason: the rejoin is done when the node streams from the source
        changes: none (waits up to 60 s)
prerequisites:
  description: Rejoin prerequisites read from pg_controldata (checksums, wal_log_hints, timelines).
  returned: when state is rejoined and work was needed
  type: dict
moved_aside:
  description: Where the old data folder was moved before a re-clone.
  returned: when a re-clone happened
  type: str
msg:
  description: One-line summary.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mcp.platform.plugins.module_utils import postgres, postgres_failover, postgres_rejoin
from ansible_collections.mcp.platform.plugins.module_utils.node_requirements import missing_library_msg
from ansible_collections.mcp.platform.plugins.module_utils.secrets import mask_text


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="status", choices=["promoted", "rejoined", "status"]),
            primary_dsn=dict(type="str", no_log=True),
            candidate_dsn=dict(type="str", required=True, no_log=True),
            postgres_password=dict(type="str", no_log=True),
            primary_down_confirmations=dict(type="list", elements="raw", default=[]),
            min_confirmations=dict(type="int", default=1),
            fenced=dict(type="bool", default=False),
            max_lag_bytes=dict(type="int", default=16 * 1024 * 1024),
            max_lag_seconds=dict(type="float", default=30.0),
            force=dict(type="bool", default=False),
            wait_seconds=dict(type="int", default=60),
            connect_timeout=dict(type="int", default=5),
            data_dir=dict(type="path"),
            port=dict(type="int", default=5432),
            bin_dir=dict(type="path", default="/usr/lib/postgresql/15/bin"),
            os_user=dict(type="str", default="postgres"),
            log_file=dict(type="path"),
            allow_reclone=dict(type="bool", default=False),
            replication_conninfo=dict(type="str", no_log=True),
        ),
        required_if=[["state", "promoted", ["primary_dsn"]], ["state", "rejoined", ["data_dir"]]],
        supports_check_mode=True,
    )
    p = module.params
    if not postgres.HAS_DRIVER:
        module.fail_json(msg=missing_library_msg("psycopg2"), exception=str(postgres.DRIVER_IMPORT_ERROR))
    for name in ("max_lag_bytes", "max_lag_seconds", "min_confirmations"):
        if p[name] < 0:
            module.fail_json(msg="%s must not be negative (got %s)" % (name, p[name]))
    for name in ("wait_seconds", "connect_timeout", "port"):
        if p[name] <= 0:
            module.fail_json(msg="%s must be positive (got %s)" % (name, p[name]))
    # The shared password (postgres_password, else PGPASSWORD) fills in the DSNs that carry none.
    password = p["postgres_password"] or os.environ.get("PGPASSWORD") or None
    secrets = postgres.dsn_secrets(p["primary_dsn"], p["candidate_dsn"], p["replication_conninfo"])
    if password:
        secrets.add(password)
    try:
        for name in ("primary_dsn", "candidate_dsn"):
            if p[name]:
                postgres.parse_dsn(p[name], name)
        primary_dsn = postgres.with_password(p["primary_dsn"], password, "primary_dsn")
        candidate_dsn = postgres.with_password(p["candidate_dsn"], password, "candidate_dsn")
        common = dict(confirmations=p["primary_down_confirmations"], fenced=p["fenced"],
                      min_confirmations=p["min_confirmations"], max_lag_bytes=p["max_lag_bytes"],
                      max_lag_seconds=p["max_lag_seconds"], timeout=p["connect_timeout"])
        if p["state"] == "status":
            gates, state, _primary = postgres_failover.evaluate_gates(primary_dsn, candidate_dsn, **common)
            failing = [g["name"] for g in gates if not g["passed"]]
            module.exit_json(changed=False, gates=gates, vantage_points=_primary["vantage_points"],
                             new_primary=postgres.describe_dsn(candidate_dsn),
                             timeline=state["timeline"], candidate_in_recovery=state["in_recovery"],
                             lag_bytes=state["lag_bytes"], lag_seconds=state["lag_seconds"],
                             msg="gates failing: %s" % ", ".join(failing) if failing else "all gates pass")
        if p["state"] == "promoted":
            res = postgres_failover.promote(primary_dsn, candidate_dsn, force=p["force"],
                                            wait_seconds=p["wait_seconds"], check_mode=module.check_mode, **common)
            res["msg"] = mask_text(res["msg"], secrets)
            if res.pop("failed"):
                module.fail_json(**res)
            module.exit_json(**res)
        node_dsn = primary_dsn or postgres.with_password(
            "host=127.0.0.1 port=%d user=postgres dbname=postgres" % p["port"], password)
        log_file = p["log_file"] or "%s.log" % p["data_dir"].rstrip("/")
        # Plan (reads only), then apply it; check mode returns the plan (RV(plan)) without applying it.
        res = postgres_rejoin.rejoin(node_dsn, candidate_dsn, p["data_dir"], p["port"], bin_dir=p["bin_dir"],
                                     os_user=p["os_user"], log_file=log_file, allow_reclone=p["allow_reclone"],
                                     replication_conninfo=p["replication_conninfo"], wait_seconds=p["wait_seconds"],
                                     timeout=p["connect_timeout"], check_mode=module.check_mode)
        res["msg"] = mask_text(res["msg"], secrets)
        res.pop("failed", None)
        module.exit_json(**res)
    except postgres.PostgresError as exc:
        # HAError derives from PostgresError: failover/rejoin refusals and DSN/connection problems alike.
        module.fail_json(msg=mask_text(str(exc), secrets))
    except postgres.DRIVER_ERRORS as exc:
        module.fail_json(msg="PostgreSQL error: %s" % mask_text(str(exc), secrets))
    except (IOError, OSError) as exc:
        module.fail_json(msg="rejoin failed: %s" % mask_text(str(exc), secrets))


if __name__ == "__main__":
    main()
