#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: mcp_backup_info
short_description: Report MCP Platform backup sets and the age of the last good one
version_added: 0.1.0
description:
  - Lists the backup sets written by M(mcp.platform.mcp_backup) (id, schedule class, type, size, age, verification
    state, components), the newest good set per schedule class and the age of the newest good set.
  - Only sets with a manifest count. A set that failed verification is never "good"; partial or failed runs have no
    manifest and never count as success.
  - Optionally writes Prometheus textfile-collector metrics atomically (temporary file and rename).
author:
  - mcp.platform maintainers (@mcp-platform)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mcp.platform.backup
  - mcp.platform.s3
attributes:
  check_mode:
    support: full
    details:
      - The metrics file is not written in check mode.
  diff_mode:
    support: none
  idempotent:
    description: Running the module twice with the same input gives the same result without further changes.
    support: full
  platform:
    platforms: posix
options:
  backup_id:
    description: Report only this set (the module fails when it does not exist).
    type: str
  label:
    description:
      - Report only sets whose manifest carries this label (see O(mcp.platform.mcp_backup#module:label)), newest first;
        RV(sets) and RV(count) are filtered, the other results still describe every set. An empty list when none has it.
    type: str
  metrics_file:
    description:
      - Write C(mcp_backup_last_success_timestamp_seconds), C(mcp_backup_last_duration_seconds), C(mcp_backup_last_size_bytes),
        C(mcp_backup_last_verified_restore_timestamp_seconds) and C(mcp_backup_sets) to this file, for example
        V(/var/lib/node_exporter/textfile/mcp_backup.prom).
    type: path
  max_age:
    description: When set, RV(stale) is true if the newest good set is older than this many seconds (or there is none).
    type: int
  timeout:
    description:
      - Seconds the whole lookup may take (every listing and manifest read, with their retries); then the module fails
        naming the store. V(0) means no limit.
      - Per-request timeouts alone let an endpoint that accepts connections and never answers hold a daily check for
        minutes.
    type: int
    default: 120
    version_added: 0.2.0
requirements:
  - boto3 (Python; for O(target=s3))
  - the mcp.platform.node role installs it on the managed node; run the module with
    C(ansible_python_interpreter=/opt/mcp-platform/venv/bin/python) (the venv the role creates)
seealso:
  - module: mcp.platform.mcp_backup
'''

EXAMPLES = r'''
- name: Backup report with metrics for node_exporter
  mcp.platform.mcp_backup_info:
    s3_endpoint_url: "{{ mcp_backup_s3_endpoint }}"
    s3_bucket: mcp-backups
    s3_prefix: production
    metrics_file: /var/lib/node_exporter/textfile/mcp_backup.prom
    max_age: 93600
  register: backups

- name: Fail the daily check when the last good backup is older than 26 hours
  ansible.builtin.assert:
    that: not backups.stale
    fail_msg: "last good backup is {{ backups.last_good_age_seconds }} s old"
'''

RETURN = r'''
sets:
  description: Complete sets, newest first.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Set id.
      type: str
    schedule_class:
      description: daily, weekly, monthly or manual.
      type: str
    type:
      description: full or incremental.
      type: str
    size_bytes:
      description: Stored (compressed) size.
      type: int
    age_seconds:
      description: Seconds since the set finished.
      type: int
    verification:
      description: ok, failed or never.
      type: str
    components:
      description: Component names.
      type: list
      elements: str
    label:
      description: The set's label, or null.
      type: str
count:
  description: Number of complete sets.
  returned: always
  type: int
incomplete_sets:
  description: Set ids with objects but no manifest (running, failed or killed runs).
  returned: always
  type: list
  elements: str
newest_good:
  description: Newest good set id per schedule class.
  returned: always
  type: dict
  sample: {daily: 20250102T020000Z-a1b2c3, weekly: 20241229T020000Z-d4e5f6}
last_good:
  description: Summary of the newest good set, or null.
  returned: always
  type: dict
last_good_age_seconds:
  description: Age of the newest good set in seconds, or null when there is none.
  returned: always
  type: int
last_verified_restore:
  description: Time of the newest successful restore drill (ISO 8601), or null.
  returned: always
  type: str
stale:
  description: Whether the newest good set is older than O(max_age) (or missing).
  returned: when max_age is set
  type: bool
metrics_written:
  description: Whether the metrics file was written.
  returned: always
  type: bool
'''

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mcp.platform.plugins.module_utils.backup_common import TARGET_REQUIRED_IF, check_target_params, target_argument_spec
from ansible_collections.mcp.platform.plugins.module_utils.deadline import DeadlineExceeded, deadline
from ansible_collections.mcp.platform.plugins.module_utils.node_requirements import missing_library_msg
from ansible_collections.mcp.platform.plugins.module_utils.secrets import fail_masked
from ansible_collections.mcp.platform.plugins.module_utils.validation import ValidationError, number

MAX_TIMEOUT = 86400

try:
    from ansible_collections.mcp.platform.plugins.module_utils import backup_engine as be
    from ansible_collections.mcp.platform.plugins.module_utils import backup_records as br
    from ansible_collections.mcp.platform.plugins.module_utils.backup_storage import HAS_BOTO3, StorageError, make_target
    IMPORT_ERROR = None
except ImportError:
    IMPORT_ERROR = traceback.format_exc()


def main():
    argument_spec = dict(
        backup_id=dict(type='str'),
        label=dict(type='str'),
        metrics_file=dict(type='path'),
        max_age=dict(type='int'),
        timeout=dict(type='int', default=120),
    )
    argument_spec.update(target_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, required_if=TARGET_REQUIRED_IF, supports_check_mode=True)
    if IMPORT_ERROR:
        fail_masked(module, 'cannot import the mcp.platform backup engine', exception=IMPORT_ERROR)
    p = module.params
    if p['target'] == 's3' and not HAS_BOTO3:
        fail_masked(module, missing_library_msg('boto3', reason='for target=s3'))
    check_target_params(module)
    if p['max_age'] is not None and p['max_age'] <= 0:
        fail_masked(module, 'max_age must be a positive number of seconds, got %d' % p['max_age'])
    try:
        number('timeout', p['timeout'], minimum=0, maximum=MAX_TIMEOUT, integer=True)
    except ValidationError as exc:
        fail_masked(module, str(exc))
    try:
        where = ('s3://%s/%s' % (p['s3_bucket'], p.get('s3_prefix') or '')) if p['target'] == 's3' else p.get('local_path')
        with deadline(p['timeout'], 'reading the backup sets in %s' % where):
            engine = be.Engine(make_target(p), {})
            info = engine.info()
    except (StorageError, be.BackupError, DeadlineExceeded) as exc:
        fail_masked(module, str(exc))
    if p['backup_id']:
        info['sets'] = [s for s in info['sets'] if s['id'] == p['backup_id']]
        if not info['sets']:
            fail_masked(module, 'backup_id %s not found in %s (a set without manifest does not exist)' % (p['backup_id'], info['target']))
    written = False
    if p['metrics_file'] and not module.check_mode:
        try:
            br.write_metrics(p['metrics_file'], info)
            written = True
        except OSError as exc:
            fail_masked(module, 'cannot write metrics_file %s: %s' % (p['metrics_file'], exc))
    if p['label'] is not None:
        info['sets'] = [s for s in info['sets'] if s.get('label') == p['label']]
        info['count'] = len(info['sets'])
    result = dict(changed=False, metrics_written=written, **info)
    if p['max_age'] is not None:
        result['stale'] = info['last_good_age_seconds'] is None or info['last_good_age_seconds'] > p['max_age']
    module.exit_json(**result)


if __name__ == '__main__':
    main()
