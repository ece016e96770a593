# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A DATABASE_URL pointed at another server, parsed rather than edited with a regex (module_utils/postgres_topology.py).

A regex over a URL breaks on IPv6 hosts, on key=value DSNs and on quoted libpq values; the failover repoints every
MCP host's DATABASE_URL, so it is done once, properly.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: repoint_dsn
short_description: Point a PostgreSQL URI or key=value DSN at another host:port, keeping everything else
version_added: 0.2.0
description:
  - Replaces the host and port of a C(postgresql://) URI (user, password, database and query kept) or the C(host) and
    C(port) keywords of a key=value DSN (added when missing).
options:
  _input:
    description: The DATABASE_URL.
    type: str
    required: true
  hostport:
    description: The new C(host:port).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The new DATABASE_URL
  ansible.builtin.set_fact:
    new_url: "{{ old_url | mcp.platform.repoint_dsn('10.0.0.22:5432') }}"
  no_log: true
"""

RETURN = r"""
_value:
  description: The repointed DATABASE_URL.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.mcp.platform.plugins.module_utils.postgres_topology import repoint


def repoint_dsn(url, hostport):
    if not isinstance(url, str) or not url.strip():
        raise AnsibleFilterError("repoint_dsn: expected a DATABASE_URL (a postgresql:// URI or key=value DSN)")
    if not isinstance(hostport, str) or ":" not in hostport:
        raise AnsibleFilterError("repoint_dsn: hostport must be host:port, got %r" % (hostport,))
    return repoint(url, hostport)


class FilterModule(object):
    def filters(self):
        return {"repoint_dsn": repoint_dsn}
