#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mcp.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mcp_deprecated_vars
version_added: 0.2.0
short_description: Warn that an old name of a playbook's entry variable is set, and name the new one
description:
  - The playbooks once documented entry variables whose names ansible-core reserves (C(action), C(serial), C(timeout),
    C(until), C(delay)); ansible-core warns about each of them. They have prefixed names now (the role's own argument,
    for example C(service_action)); the old ones keep working until version 0.3.0 of the collection and this module
    prints a deprecation warning for each one that is set.
  - Runs on the controller (an action plugin); it reads the variables, never a host.
author:
  - mcp.platform maintainers (@mcp-platform)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: all
options:
  names:
    description: Old name to new name.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Old entry variable names still work, with a deprecation warning
  mcp.platform.mcp_deprecated_vars:
    names: {action: service_action, delay: service_delay, timeout: service_stop_timeout}
  run_once: true
"""

RETURN = r"""
deprecated:
  description: The old names that are set, each with its new name.
  returned: always
  type: dict
  sample: {action: service_action}
"""
