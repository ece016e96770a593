# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # The container-engine connection (module_utils/platform.py): Docker Engine or Podman's compatible service.
    DOCUMENTATION = r'''
options:
  docker_host:
    description:
      - Address of the Docker-compatible API, for example V(unix:///var/run/docker.sock),
        V(unix:///run/podman/podman.sock) or V(tcp://engine.example.com:2376).
      - When omitted, the environment variable E(DOCKER_HOST), then V(unix:///var/run/docker.sock).
    type: str
  docker_tls_verify:
    description:
      - Use TLS and verify the engine's certificate against C(ca.pem) in O(docker_cert_path).
      - When omitted, the environment variable E(DOCKER_TLS_VERIFY).
    type: bool
  docker_cert_path:
    description:
      - Folder holding C(ca.pem), C(cert.pem) and C(key.pem) for a TLS engine (the layout the docker CLI uses).
      - When omitted, the environment variable E(DOCKER_CERT_PATH); setting it turns TLS on.
    type: path
  docker_timeout:
    description: Seconds an engine API call may take.
    type: int
    default: 60
requirements:
  - docker (the Docker SDK for Python) >= 7.1 on the managed node (the mcp.platform.node role installs it)
'''
