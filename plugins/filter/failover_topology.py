# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The failover role's decisions (nodes, primary, candidate, where DATABASE_URL points) as filters.

The rules live in module_utils/postgres_topology.py, unit-tested; these filters only hand them the play's data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: failover_topology
short_description: Decide the PostgreSQL failover's candidate and old primary from probes and DATABASE_URLs
version_added: 0.2.0
description:
  - Input is the registered result of M(mcp.platform.mcp_health) with one V(postgres) check per node (named after the node).
  - Returns C(nodes), C(roles) (primary, replica or down per node), C(url_targets) (every host:port the MCP hosts'
    DATABASE_URLs point at), C(url_node), C(candidate), C(primary), C(candidate_dsn), C(primary_dsn), C(summary), and
    C(problem) - why the action cannot go on, or V(null).
  - The candidate is the only replica (or, with none, the primary); the old primary is the node DATABASE_URL points at,
    or the other of two nodes. O(candidate), O(primary) and the DSN overrides win.
options:
  _input:
    description: The mcp_health result.
    type: dict
    required: true
  nodes:
    description: The nodes, from the P(mcp.platform.failover_nodes#filter) filter.
    type: dict
    required: true
  database_urls:
    description: Every MCP host's DATABASE_URL.
    type: list
    elements: str
    required: true
  action:
    description: failover, switchover, rejoin or status.
    type: str
    default: status
  candidate:
    description: Node name that wins over the found candidate.
    type: str
    default: ""
  primary:
    description: Node name that wins over the found old primary.
    type: str
    default: ""
  candidate_dsn:
    description: A DSN that wins over the candidate node's.
    type: str
    default: ""
  primary_dsn:
    description: A DSN that wins over the old primary node's.
    type: str
    default: ""
  password_suffix:
    description: Appended to the nodes' DSNs (C( password='...')).
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Decide
  ansible.builtin.set_fact:
    topology: >-
      {{ probe | mcp.platform.failover_topology(nodes=groups['postgres'] | mcp.platform.failover_nodes(hostvars, 'postgres',
         'postgres', '/var/lib/postgresql/15/main'), database_urls=['postgresql://app@10.0.0.21/mcp'], action='failover') }}
"""

RETURN = r"""
_value:
  description: The decision (see the description).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.mcp.platform.plugins.module_utils.postgres_topology import decide_topology


def failover_topology(probe, nodes, database_urls, action="status", candidate="", primary="", candidate_dsn="",
                      primary_dsn="", password_suffix=""):
    if not isinstance(probe, dict):
        raise AnsibleFilterError("failover_topology: expected the registered mcp_health result, got %s" % type(probe).__name__)
    roles = dict((c.get("name"), (c.get("details") or {}).get("role") or "down") for c in probe.get("checks") or [])
    return decide_topology(nodes, roles, [u for u in database_urls if u], action, candidate or "", primary or "",
                           candidate_dsn or "", primary_dsn or "", password_suffix or "")


class FilterModule(object):
    def filters(self):
        return {"failover_topology": failover_topology}
