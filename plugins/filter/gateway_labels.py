# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gateway's routing labels of one service, in one place.

The deploy role creates the replicas and the update (and its rollback) replaces them; both must give a
new replica exactly the labels the gateway routes by, or a replaced replica would be routed differently
from a deployed one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: gateway_labels
short_description: Traefik labels that route C(/mcp/<service>) to a replica
version_added: 0.1.0
description:
  - Returns the container labels by which the platform's Traefik gateway routes C(/mcp/<service>) on its
    C(web) and C(websecure) entry points to a service's replicas, strips the prefix, and health-checks each
    replica on C(/health), so that the gateway never routes to a replica that is not ready or is draining.
  - Used by the C(deploy) and C(update) roles so that replaced replicas carry exactly the labels of deployed ones.
options:
  _input:
    description: The service name, for example V(filesystem).
    type: str
    required: true
  health_interval:
    description: How often the gateway probes each replica's C(/health) (a Traefik duration).
    type: str
    default: 1s
  health_timeout:
    description: How long the gateway waits for one C(/health) answer.
    type: str
    default: 1s
  port:
    description: The port the service listens on inside its container.
    type: int
    default: 8080
"""

EXAMPLES = r"""
- name: Run a replica the gateway routes to
  community.docker.docker_container:
    name: mcp-1-filesystem-1
    image: registry.example.com/mcp-platform/filesystem:1.1.0
    labels: "{{ {'io.mcp-platform.service': 'filesystem'} | combine('filesystem' | mcp.platform.gateway_labels(health_interval='2s')) }}"
"""

RETURN = r"""
_value:
  description: Label names and values, all strings.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.mcp.platform.plugins.module_utils.gateway_config import router_labels


def gateway_labels(service, health_interval="1s", health_timeout="1s", port=8080):
    try:
        return router_labels(service, health_interval, health_timeout, port)
    except ValueError as exc:
        raise AnsibleFilterError("gateway_labels: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"gateway_labels": gateway_labels}
