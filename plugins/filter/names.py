# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A list of names from what a user or a survey passes: the one place that reads C(-e services=git).

``-e services=git`` arrives as the string ``git``, ``-e services=git,filesystem`` as one string with a comma, an AWX
multiselect answer as a list (older AWX versions: one string, one choice per line), a YAML list as a list. A role that
loops over the string walks its letters, so every entry list goes through this filter.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

DOCUMENTATION = r"""
name: names
short_description: A list of names from a list, a comma-separated string or a survey's multiselect answer
version_added: 0.2.0
description:
  - Splits a string on commas, newlines and blanks; keeps a list as it is (each item trimmed); drops empty items and
    duplicates (first one wins). V(None) and the empty string give an empty list.
options:
  _input:
    description: A list of names or one string.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Services from -e services=git,filesystem or from a YAML list
  ansible.builtin.set_fact:
    update__services: "{{ update_services | mcp.platform.names }}"
"""

RETURN = r"""
_value:
  description: The names, in order.
  type: list
  elements: str
"""

_SEPARATORS = re.compile(r"[,\s]+")


def names(value):
    if value is None:
        return []
    if isinstance(value, string_types):
        items = _SEPARATORS.split(value)
    elif isinstance(value, (list, tuple)):
        items = []
        for item in value:
            if not isinstance(item, (string_types, int)) or isinstance(item, bool):
                raise AnsibleFilterError("names: expected a list of names, got an item of type %s: %r" % (type(item).__name__, item))
            items.append(str(item).strip())
    else:
        raise AnsibleFilterError("names: expected a list or a comma-separated string, got %s" % type(value).__name__)
    out = []
    for item in items:
        if item and item not in out:
            out.append(item)
    return out


class FilterModule(object):
    def filters(self):
        return {"names": names}
