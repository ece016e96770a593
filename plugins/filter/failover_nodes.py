# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PostgreSQL nodes of the inventory as the failover role needs them (module_utils/postgres_topology.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: failover_nodes
short_description: Describe the inventory's PostgreSQL nodes for the failover (address, port, DSN, data folder)
version_added: 0.2.0
description:
  - For each host, its address (C(mcp_postgres_host), then C(ansible_host), then its name), port (C(mcp_postgres_port),
    default 5432), a password-free admin DSN and its data folder (C(mcp_postgres_data_dir), default O(default_data_dir)).
options:
  _input:
    description: The inventory names of the PostgreSQL nodes.
    type: list
    elements: str
    required: true
  hostvars:
    description: The play's C(hostvars).
    type: raw
    required: true
  admin_user:
    description: User of the admin DSN.
    type: str
    required: true
  admin_db:
    description: Database of the admin DSN.
    type: str
    required: true
  default_data_dir:
    description: Data folder of a node without C(mcp_postgres_data_dir).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The nodes
  ansible.builtin.set_fact:
    nodes: "{{ groups['postgres'] | mcp.platform.failover_nodes(hostvars, 'postgres', 'postgres', '/var/lib/postgresql/15/main') }}"
"""

RETURN = r"""
_value:
  description: "{name: {host, port, hostport, dsn, data_dir}}"
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.mcp.platform.plugins.module_utils.postgres_topology import describe_nodes


def failover_nodes(hosts, hostvars, admin_user, admin_db, default_data_dir):
    if not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError("failover_nodes: expected a list of inventory host names, got %s" % type(hosts).__name__)
    return describe_nodes(dict((h, hostvars[h]) for h in hosts), admin_user, admin_db, default_data_dir)


class FilterModule(object):
    def filters(self):
        return {"failover_nodes": failover_nodes}
