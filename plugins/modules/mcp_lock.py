#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mcp.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mcp_lock
version_added: 0.1.0
short_description: Fleet-wide operation lock (one operation on the platform at a time)
description:
  - Takes, releases or reports a lock kept in one file on a shared location, so that two
    operators (or AWX jobs) never run an update, failover or restore on the same fleet at once.
  - Acquiring is atomic (the complete lock is hard-linked into place, which fails when the file
    exists). A second acquirer fails with a message naming the holder, the operation, the start
    time and the expiry. An expired lock (O(ttl)) is taken over atomically.
  - Only the owner releases the lock, unless O(force=true).
  - Run it once, on the machine that holds the lock file (C(delegate_to) + C(run_once)).
author:
  - mcp.platform maintainers (@mcp-platform)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  state:
    description: V(acquired) takes the lock, V(released) drops it, V(status) reports it.
    type: str
    choices: [acquired, released, status]
    default: status
  path:
    description: The lock file; its folder must exist (a shared file system for a fleet).
    type: path
    required: true
  owner:
    description:
      - Who holds the lock. Acquiring again with the same owner is a no-op (C(changed=false)).
      - Defaults to C(user@host) of the machine running the module; pass something unique per run
        (for example with the AWX job id or C(ansible_date_time.epoch)) so two runs by the same user
        exclude each other.
    type: str
  operation:
    description: What the lock is for (shown to anyone who is refused).
    type: str
  ttl:
    description: Seconds after which the lock expires and may be taken over. No expiry when omitted.
    type: int
  force:
    description: Release a lock held by someone else.
    type: bool
    default: false
requirements:
  - only the Python standard library (any Python 3 will do - the system Python of the machine holding the lock file
    or the venv the mcp.platform.node role installs on a managed node)
seealso:
  - module: mcp.platform.mcp_failover
"""

EXAMPLES = r"""
- name: Take the fleet lock for the update
  mcp.platform.mcp_lock:
    state: acquired
    path: /srv/shared/mcp/fleet.lock
    owner: "{{ lookup('env', 'USER') }}@{{ lookup('pipe', 'hostname') }}/{{ awx_job_id | default(ansible_date_time.epoch) }}"
    operation: "update to {{ version }}"
    ttl: 3600
  delegate_to: localhost
  run_once: true
  register: fleet_lock

- name: Release it
  mcp.platform.mcp_lock:
    state: released
    path: /srv/shared/mcp/fleet.lock
    owner: "{{ fleet_lock.lock.owner }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
lock:
  description: The lock (after acquiring; as found for status and release). Empty when there is none.
  returned: always
  type: dict
  sample:
    owner: alice@ops1/4711
    operation: update to 2.4.0
    acquired_at: "2026-11-25T02:00:00Z"
    expires_at: "2026-11-25T03:00:00Z"
    expired: false
    host: ops1
locked:
  description: Whether a live (not expired) lock exists.
  returned: when state is status
  type: bool
taken_over:
  description: The expired lock that was taken over.
  returned: when an expired lock was taken over
  type: dict
msg:
  description: One-line summary.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mcp.platform.plugins.module_utils import fleet_lock
from ansible_collections.mcp.platform.plugins.module_utils.validation import ValidationError, seconds


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="status", choices=["acquired", "released", "status"]),
            path=dict(type="path", required=True),
            owner=dict(type="str"),
            operation=dict(type="str"),
            ttl=dict(type="int"),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    owner = p["owner"] or fleet_lock.default_owner()
    if p["ttl"] is not None:
        try:
            seconds("ttl", p["ttl"])
        except ValidationError as exc:
            module.fail_json(msg=str(exc))
    try:
        if p["state"] == "status":
            module.exit_json(**fleet_lock.status(p["path"]))
        before = fleet_lock.status(p["path"])["lock"]
        if p["state"] == "acquired":
            res = fleet_lock.acquire(p["path"], owner, p["operation"], p["ttl"], check_mode=module.check_mode)
        else:
            res = fleet_lock.release(p["path"], owner, force=p["force"], check_mode=module.check_mode)
    except fleet_lock.LockError as exc:
        module.fail_json(msg=str(exc), lock=fleet_lock.status(p["path"])["lock"] if p["state"] != "status" else {})
    except (IOError, OSError) as exc:
        module.fail_json(msg="lock %s: %s" % (p["path"], exc))
    if res.get("taken_over") is None:
        res.pop("taken_over", None)
    for item in [res.get("lock"), res.get("taken_over"), before]:
        if item:
            item.pop("token", None)
    if module._diff and res["changed"]:
        after = res["lock"] if p["state"] == "acquired" else {}
        res["diff"] = dict(before=before, after=after)
    module.exit_json(**res)


if __name__ == "__main__":
    main()
