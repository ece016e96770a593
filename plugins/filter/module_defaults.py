# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection settings as a ``module_defaults`` group value: unset entries left out.

Roles pass one connection (the S3 store, the engine) to every module of a group through ``module_defaults``
instead of repeating it per task. ``omit`` does not work inside a ``module_defaults`` value, and an empty string
would override a module's environment fallback (``AWS_ACCESS_KEY_ID`` ...), so unset settings are dropped here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: module_defaults
short_description: Drop the unset entries of a dict of module options (for module_defaults)
version_added: 0.2.0
description:
  - Returns the dict without the entries whose value is V(null) or an empty string, so that a module's own default
    or environment fallback applies to them.
options:
  _input:
    description: Module options.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Every mcp_backup / mcp_backup_info task in the block talks to the same store
  module_defaults:
    group/mcp.platform.s3: "{{ {'s3_bucket': bucket, 's3_endpoint_url': endpoint} | mcp.platform.module_defaults }}"
  block:
    - name: List the sets
      mcp.platform.mcp_backup_info:
        s3_prefix: production/platform
"""

RETURN = r"""
_value:
  description: The options that are set.
  type: dict
"""

from ansible.errors import AnsibleFilterError


def module_defaults(options):
    if not isinstance(options, dict):
        raise AnsibleFilterError("module_defaults: expected a dict of module options, got %s" % type(options).__name__)
    return dict((k, v) for k, v in options.items() if v is not None and v != "")


class FilterModule(object):
    def filters(self):
        return {"module_defaults": module_defaults}
