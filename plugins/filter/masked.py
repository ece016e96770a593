# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Text with its passwords masked, the same way the modules mask their results (module_utils/secrets.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: masked
short_description: Mask the passwords in a DSN, URL or message (C(********))
version_added: 0.2.0
description:
  - Replaces URL passwords (C(scheme://user:password@)), C(password=) query parameters and libpq C(password=) keywords
    (quoted or not), and every string of O(secrets), with C(********). The modules' own masking, for task output.
options:
  _input:
    description: The text.
    type: str
    required: true
  secrets:
    description: Literal strings to mask too.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Show the DATABASE_URL without its password
  ansible.builtin.debug:
    msg: "{{ database_url | mcp.platform.masked }}"
"""

RETURN = r"""
_value:
  description: The masked text.
  type: str
"""

from ansible_collections.mcp.platform.plugins.module_utils.secrets import mask_text


def masked(text, secrets=()):
    return mask_text("" if text is None else str(text), secrets or ())


class FilterModule(object):
    def filters(self):
        return {"masked": masked}
