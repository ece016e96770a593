# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One line per replica slot of an mcp_rollout result, for the play's output.

What an operator reads at 3 a.m. after a rollout step: which replica went where and how long its gates took. Written
once here instead of as a Jinja list builder in every role that replaces replicas.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: rollout_summary
short_description: Summarise the replaced slots of an mcp_rollout result, one line each
version_added: 0.2.0
description:
  - Takes RV(mcp.platform.mcp_rollout#module:replaced) and returns one line per slot - the new or restarted
    replica with its seconds to healthy and routed, and the old replicas retired (with O(mode=stop), the ones stopped).
options:
  _input:
    description: The C(replaced) list of an mcp_rollout result.
    type: list
    elements: dict
    required: true
  mode:
    description: The mode the module ran in (V(replace), V(restart) or V(stop)).
    type: str
    default: replace
  version:
    description: The version the slots were brought to (for the slots that were already there).
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: What was replaced
  ansible.builtin.debug:
    msg: "{{ rollout.replaced | mcp.platform.rollout_summary('replace', '1.2.0') }}"
"""

RETURN = r"""
_value:
  description: One line per slot (V(nothing to do) when the list is empty).
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError


def _retired(slot, verb):
    retired = slot.get("retired") or []
    if not retired:
        return ""
    return ", %s %s in %s s" % (verb, ", ".join(str(r.get("name")) for r in retired),
                                ", ".join(str(r.get("seconds")) for r in retired))


def _gates(slot):
    return " healthy %s s, routed %s s" % (slot.get("healthy_after"), slot.get("routed_after"))


def rollout_summary(replaced, mode="replace", version=""):
    if not isinstance(replaced, list):
        raise AnsibleFilterError("rollout_summary: expected the replaced list of an mcp_rollout result, got %s"
                                 % type(replaced).__name__)
    lines = []
    for slot in replaced:
        head = "%s %s: " % (slot.get("service"), slot.get("replica"))
        if mode == "stop":
            lines.append(head + (_retired(slot, "stopped")[2:] or "already stopped"))
        elif slot.get("restarted"):
            lines.append(head + "restarted %s%s" % (slot["restarted"], _gates(slot))
                         + (" (drained first)" if slot.get("drained") else ""))
        elif slot.get("new"):
            lines.append(head + slot["new"] + _gates(slot) + _retired(slot, "retired"))
        else:
            lines.append(head + ("already at %s" % version).rstrip() + _retired(slot, "retired"))
    return lines or ["nothing to do"]


class FilterModule(object):
    def filters(self):
        return {"rollout_summary": rollout_summary}
