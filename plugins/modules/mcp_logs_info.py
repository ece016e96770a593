#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mcp_logs_info
short_description: Count and show recent error and warning lines of the platform's containers
version_added: 0.1.0
description:
  - Reads the logs of every container that carries the given labels through the Docker API (Docker Engine or
    Podman's Docker-compatible service) and classifies each line as C(error) or C(warn) by its level word.
  - The manual's C(mcp logs --level error --since 24h | tail -20), as data the daily check can report.
  - community.docker has no module that reads container logs, hence this one.
author:
  - mcp.platform maintainers (@mcp-platform)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mcp.platform.docker
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  labels:
    description: Only containers carrying every one of these C(key=value) labels are read.
    type: list
    elements: str
    default: [io.mcp-platform.managed=true]
  since:
    description: How far back to read, in seconds.
    type: int
    default: 86400
  levels:
    description: Which levels to count.
    type: list
    elements: str
    choices: [error, warn]
    default: [error, warn]
  last:
    description: How many of the most recent matching lines to return.
    type: int
    default: 20
notes:
  - Run the module with C(ansible_python_interpreter=/opt/mcp-platform/venv/bin/python), the venv the
    mcp.platform.node role creates with the Docker SDK in it.
"""

EXAMPLES = r"""
- name: Errors and warnings of this host's MCP containers in the last 24 hours
  mcp.platform.mcp_logs_info:
    docker_host: "{{ mcp_docker_host }}"
    labels:
      - io.mcp-platform.managed=true
      - "io.mcp-platform.host={{ inventory_hostname }}"
  register: recent

- name: Only errors of the last hour, the 5 newest shown
  mcp.platform.mcp_logs_info:
    since: 3600
    levels: [error]
    last: 5
"""

RETURN = r"""
containers:
  description: Names of the containers that were read.
  returned: success
  type: list
  elements: str
  sample: [mcp-1-filesystem-1-v1.0.0]
counts:
  description: Matching lines per level.
  returned: success
  type: dict
  sample: {error: 2, warn: 5}
total:
  description: All matching lines.
  returned: success
  type: int
  sample: 7
last:
  description: The most recent matching lines, oldest first.
  returned: success
  type: list
  elements: dict
  sample: [{container: mcp-1-git-2-v1.0.0, level: error, line: "ERROR mcp handshake failed"}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mcp.platform.plugins.module_utils.container_logs import recent_problems
from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError
from ansible_collections.mcp.platform.plugins.module_utils.platform import MANAGED_LABEL, docker_argument_spec, docker_client_from_params
from ansible_collections.mcp.platform.plugins.module_utils.secrets import fail_masked


def main():
    argument_spec = docker_argument_spec()
    argument_spec.update(
        labels=dict(type="list", elements="str", default=[MANAGED_LABEL + "=true"]),
        since=dict(type="int", default=86400),
        levels=dict(type="list", elements="str", choices=["error", "warn"], default=["error", "warn"]),
        last=dict(type="int", default=20),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    if p["since"] <= 0:
        fail_masked(module, "since must be a positive number of seconds, got %d" % p["since"])
    if p["last"] < 0:
        fail_masked(module, "last must be 0 or more, got %d" % p["last"])
    bad = [lbl for lbl in p["labels"] if "=" not in lbl]
    if bad:
        fail_masked(module, "labels must be key=value pairs; not: %s" % ", ".join(bad))
    try:
        client = docker_client_from_params(p)
        try:
            result = recent_problems(client, p["labels"], p["since"], p["last"], tuple(p["levels"]))
        finally:
            client.close()
    except PlatformError as e:  # LogsError, EngineError: already say which engine and what failed
        fail_masked(module, str(e))
    except Exception as e:  # pylint: disable=broad-except  # docker.errors.* / requests errors from the SDK
        fail_masked(module, "cannot read logs from the Docker API at %s: %s" % (
            p["docker_host"] or "unix:///var/run/docker.sock", " ".join(str(e).split())))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
