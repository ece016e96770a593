#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mcp_release_info
short_description: Whether every image of a platform version is in the registry, and the breaking changes it declares
version_added: 0.1.0
description:
  - Asks the registry's HTTP API v2 for the manifest of every service image (and extra images such as the migrations
    image) of one version, and reads each service image's C(io.mcp-platform.breaking-changes) label from its
    configuration. An image index (multi-architecture) resolves to its linux image.
  - Adds the breaking changes an optional release-notes file lists for the version.
  - The manual's Pre-Update Checklist items "the image exists" and "read the release notes", as data the update's
    pre-flight asserts on. Read-only; nothing is pulled.
author:
  - mcp.platform maintainers (@mcp-platform)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  registry:
    description: The registry's host (and port) as image references name it, for example V(registry.example.com:5000).
    type: str
    required: true
  registry_url:
    description:
      - Base URL of the registry's HTTP API v2.
      - When omitted, V(http://) for a loopback registry and V(https://) otherwise, followed by O(registry).
    type: str
  validate_certs:
    description: Verify the registry's TLS certificate.
    type: bool
    default: true
  namespace:
    description: The repositories' namespace, for example V(mcp-platform) in C(mcp-platform/git).
    type: str
    default: mcp-platform
  services:
    description: The service images to look up; their labels are read for breaking changes.
    type: list
    elements: str
    required: true
  extra_images:
    description: Further repositories of the namespace that must exist at O(version) (labels not read).
    type: list
    elements: str
    default: []
  version:
    description: The tag to look up.
    type: str
    required: true
  release_notes_file:
    description:
      - "YAML file mapping versions to C({breaking_changes: [...]}) or to a list of strings."
      - Read where the module runs (delegate it to the controller for a file beside the playbook).
    type: path
  timeout:
    description: Seconds each registry request may take.
    type: int
    default: 10
notes:
  - Anonymous access only; a registry that requires a token answers 401, reported as the image missing with its status.
"""

EXAMPLES = r"""
- name: Is 2.4.0 complete in the registry, and what does it break?
  mcp.platform.mcp_release_info:
    registry: registry.example.com
    services: [filesystem, git]
    extra_images: [migrations]
    version: 2.4.0
    release_notes_file: "{{ playbook_dir }}/release-notes.yml"
  delegate_to: localhost
  run_once: true
  register: release

- name: Refuse a version with an image missing
  ansible.builtin.assert:
    that: release.missing | length == 0
    fail_msg: "not in the registry: {{ release.missing | join(', ') }}"
"""

RETURN = r"""
images:
  description: Every image looked up, in order (services, then extra images).
  returned: success
  type: list
  elements: dict
  sample:
    - {name: git, reference: "registry.example.com/mcp-platform/git:2.4.0", service: true, present: true, status: 200,
       digest: "sha256:5f1e...", labels: {io.mcp-platform.version: 2.4.0}}
missing:
  description: References (C(registry/namespace/name:version)) the registry does not hold.
  returned: success
  type: list
  elements: str
  sample: ["registry.example.com/mcp-platform/migrations:2.4.0"]
missing_status:
  description: The HTTP statuses the registry answered for the missing images (404, or 401/403 for a private registry).
  returned: success
  type: list
  elements: int
  sample: [404]
breaking_changes:
  description: "C(<service>: <label text>) per image that declares some, then C(release notes: <text>) per entry of the file."
  returned: success
  type: list
  elements: str
  sample: ["git: drops the legacy /v0 API", "release notes: DATABASE_URL must name sslmode"]
registry_url:
  description: The API base that was asked.
  returned: success
  type: str
  sample: https://registry.example.com
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.yaml import yaml_load

from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError
from ansible_collections.mcp.platform.plugins.module_utils.registry import Registry, registry_api, release_info
from ansible_collections.mcp.platform.plugins.module_utils.secrets import mask_text


def _notes(module, path):
    if not path:
        return None
    if not os.path.isfile(path):
        module.fail_json(msg="release_notes_file %s does not exist (or is not a file)" % path)
    try:
        with open(path, "r") as fh:
            return yaml_load(fh) or {}
    except Exception as e:  # pylint: disable=broad-except  # yaml.YAMLError, OSError: say which file
        module.fail_json(msg="release_notes_file %s cannot be read as YAML: %s" % (path, " ".join(str(e).split())))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            registry=dict(type="str", required=True),
            registry_url=dict(type="str"),
            validate_certs=dict(type="bool", default=True),
            namespace=dict(type="str", default="mcp-platform"),
            services=dict(type="list", elements="str", required=True),
            extra_images=dict(type="list", elements="str", default=[]),
            version=dict(type="str", required=True),
            release_notes_file=dict(type="path"),
            timeout=dict(type="int", default=10),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not p["services"]:
        module.fail_json(msg="services must name at least one service")
    if not p["version"].strip() or "/" in p["version"] or ":" in p["version"]:
        module.fail_json(msg="version must be a tag, got %r" % p["version"])
    if p["timeout"] <= 0:
        module.fail_json(msg="timeout must be a positive number of seconds, got %d" % p["timeout"])
    notes = _notes(module, p["release_notes_file"])
    api = registry_api(p["registry"], p["registry_url"] or "")
    try:
        result = release_info(Registry(api, p["validate_certs"], float(p["timeout"])), p["namespace"].strip("/"),
                              p["services"], p["version"], p["extra_images"], notes, host=p["registry"])
    except PlatformError as e:  # RegistryError: names the registry and what it answered
        module.fail_json(msg=mask_text(str(e)), registry_url=mask_text(api))
    result["missing_status"] = sorted(set(i["status"] for i in result["images"] if not i["present"]))
    module.exit_json(changed=False, registry_url=mask_text(api), **result)


if __name__ == "__main__":
    main()
