# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mcp.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deprecation warnings for a playbook's old entry variable names (documentation: plugins/modules/mcp_deprecated_vars.py).

An action plugin rather than a module: the question is which variables the play sees, which only the controller knows,
and the warning belongs in the controller's output (and in AWX's job events) as a real deprecation.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.module_utils.six import string_types
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    # No _VALID_ARGS: module_defaults for group/mcp.platform.all may add options meant for the other modules.

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        names = self._task.args.get("names")
        if not isinstance(names, dict) or not all(isinstance(k, string_types) and isinstance(v, string_types)
                                                  for k, v in names.items()):
            raise AnsibleActionFail("names must be a mapping of old variable names to new ones")
        used = dict((old, new) for old, new in sorted(names.items()) if old in task_vars)
        for old, new in used.items():
            display.deprecated("the entry variable %r (a name ansible-core reserves) is now %r: pass -e %s=... instead"
                               % (old, new, new), version="0.3.0", collection_name="mcp.platform")
        result.update(changed=False, deprecated=used,
                      msg="old names set: %s" % ", ".join("%s (now %s)" % kv for kv in used.items()) if used
                      else "no old names set")
        return result
