# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where this ansible-playbook process loads a collection role or module from (molecule scenarios only)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: mcp_resolved_path
short_description: The path a role or module FQCN resolves to in this ansible-playbook process
description:
  - For the molecule scenarios (extensions/molecule/shared/installed_collection.yml), to assert that what runs is the
    collection installed from the built tarball and not the checkout.
  - A role is resolved the way a play resolves C(roles:) and C(include_role) (the collection loader), a module the way a
    task resolves its action (the module loader), so the answer is the copy the scenario's own tasks run.
options:
  _terms:
    description: Role or module FQCNs.
    required: true
  type:
    description: What the names are.
    type: str
    choices: [role, module]
    default: role
"""

from ansible.errors import AnsibleError
from ansible.plugins.loader import module_loader
from ansible.plugins.lookup import LookupBase

# RoleDefinition resolves a role FQCN with this very function (ansible/playbook/role/definition.py).
from ansible.utils.collection_loader._collection_finder import _get_collection_role_path


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        kind = self.get_option("type")
        paths = []
        for name in terms:
            if kind == "role":
                found = _get_collection_role_path(name)
                path = found[1] if found else None
            else:
                context = module_loader.find_plugin_with_context(name)
                path = context.plugin_resolved_path if context.resolved else None
            if not path:
                raise AnsibleError("%s %s is not found on this run's collection path" % (kind, name))
            paths.append(path)
        return paths
