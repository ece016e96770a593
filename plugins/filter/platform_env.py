# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's platform.env as a dict, in one place.

platform.env is the host's record of what it runs: VERSION, and DATABASE_URL, which the failover role repoints. Every
role that needs the database must take it from there (the inventory's mcp_database_url is only the first install's
value), so they all parse the file the same way.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: platform_env
short_description: Parse a host's platform.env (KEY=VALUE lines) into a dict
version_added: 0.1.0
description:
  - Returns the variables of C(/etc/mcp/platform.env) (the manual's C(.env)), one C(KEY=VALUE) per line; blank lines
    and lines starting with C(#) are skipped, an optional C(export) prefix and one pair of surrounding quotes are removed.
  - Takes the file's text, or the result of M(ansible.builtin.slurp) (base64 C(content)); a missing file (a failed slurp)
    gives an empty dict, so C(| default(...)) picks the fallback.
options:
  _input:
    description: The file's text, or a registered M(ansible.builtin.slurp) result.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Read platform.env
  ansible.builtin.slurp:
    src: /etc/mcp/platform.env
  register: platform_env_file
  failed_when: false
  no_log: true

- name: The database this host uses (a failover repoints it there)
  ansible.builtin.set_fact:
    database_url: "{{ (platform_env_file | mcp.platform.platform_env).DATABASE_URL | default(mcp_database_url) }}"
  no_log: true
"""

RETURN = r"""
_value:
  description: Variable names and values, all strings.
  type: dict
"""

import base64
import binascii
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


def platform_env(data):
    if isinstance(data, dict):
        if "content" not in data:
            return {}
        try:
            text = to_text(base64.b64decode(data["content"], validate=True), errors="surrogate_or_strict")
        except (binascii.Error, TypeError, ValueError) as exc:
            raise AnsibleFilterError("platform_env: the slurp result's content is not base64: %s" % exc)
    elif isinstance(data, str):
        text = data
    elif data is None:
        return {}
    else:
        raise AnsibleFilterError("platform_env: expected the file's text or a slurp result, got %s" % type(data).__name__)
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip()
        if key.startswith("export "):
            key = key[len("export "):].strip()
        if not _KEY.match(key):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key] = value
    return out


class FilterModule(object):
    def filters(self):
        return {"platform_env": platform_env}
