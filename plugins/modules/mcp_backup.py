#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: mcp_backup
short_description: Create, verify, restore and prune MCP Platform backup sets
version_added: 0.1.0
description:
  - Creates a backup set of the MCP Platform (PostgreSQL, MongoDB, Kubernetes resources, configuration
    directories, data volumes), streaming every component through zstd and SHA-256 to an S3-compatible bucket
    (multipart upload) or a local directory, without staging a copy on disk. Components run concurrently.
  - The set's C(manifest.json) is written last; a set without a manifest does not exist for verification,
    restore, retention or M(mcp.platform.mcp_backup_info). When any component fails, its upload is aborted,
    already written objects are removed, no manifest is written and the module fails naming the component.
  - O(state=verified) re-reads every object and compares its SHA-256 with the manifest; with O(drill=true) it also
    restores PostgreSQL into a scratch database and compares every table's row count with the manifest. The
    result is stored next to the set as C(verification.json).
  - O(state=restored) verifies the set first and refuses one that fails, then restores the requested components
    (following incremental chains for config and volumes). Stopping services and maintenance mode are left to the
    calling role.
  - O(state=pruned) applies grandfather-father-son retention by schedule class, aborts unfinished multipart uploads
    and removes objects of sets without manifest once they are older than O(abort_incomplete_after).
author:
  - mcp.platform maintainers (@mcp-platform)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - mcp.platform.backup
  - mcp.platform.s3
  - mcp.platform.postgres
  - mcp.platform.backup.postgres_tools
attributes:
  check_mode:
    support: full
    details:
      - O(state=present) reports the plan (components, type, parent) without uploading.
      - O(state=verified) re-reads and checks every object but skips the drill and does not store the result.
      - O(state=restored) verifies and reports the restore plan without changing anything.
      - O(state=pruned) is a dry run returning exactly what would be deleted and why.
  diff_mode:
    support: partial
    details:
      - Reported for O(state=present) and O(state=pruned) as the list of set ids before and after.
  idempotent:
    description: Running the module twice with the same input gives the same result without further changes.
    support: partial
    details:
      - O(state=present) creates a new set on every run, by design. O(state=pruned) is idempotent.
  platform:
    platforms: posix
options:
  state:
    description:
      - V(present) creates a backup set, V(verified) verifies one, V(restored) restores one, V(pruned) applies retention.
    type: str
    choices: [present, verified, restored, pruned]
    default: present
  components:
    description:
      - Components to back up (O(state=present), default V(postgres), V(config), V(volumes)) or to restore
        (O(state=restored), default every restorable component of the set).
      - V(mongodb) needs C(mongodump)/C(mongorestore) and O(mongodb_uri); V(kubernetes) needs the kubernetes Python
        client and is backup-only (restore its objects with C(kubernetes.core.k8s)).
    type: list
    elements: str
    choices: [postgres, mongodb, kubernetes, config, volumes]
  type:
    description:
      - V(full) or V(incremental). Incremental applies to config and volumes (GNU tar listed-incremental against the newest
        complete set); PostgreSQL is always dumped in full. Without an earlier set a full backup is taken, with a warning.
    type: str
    choices: [full, incremental]
    default: full
  schedule_class:
    description: Retention class recorded in the manifest.
    type: str
    choices: [daily, weekly, monthly, manual]
    default: manual
  backup_id:
    description:
      - Set to verify or restore. Default is the newest set (O(state=verified)) or the newest set that has not failed
        verification (O(state=restored)).
    type: str
  label:
    description:
      - A name for the set, for example V(pre-update-1.2.0-20250101T020000) (letters, digits, C(.), C(_), C(:), C(+), C(-);
        at most 128 characters). O(state=present) records it in the manifest (C(label)).
      - With O(state=verified) or O(state=restored) and no O(backup_id), selects the newest set carrying this label
        (for O(state=restored) the newest one that has not failed verification).
      - M(mcp.platform.mcp_backup_info) reports it and filters by it.
    type: str
  drill:
    description: With O(state=verified), restore PostgreSQL into a scratch database, compare row counts, drop it.
    type: bool
    default: false
  retention:
    description:
      - "Days to keep each schedule class for O(state=pruned), for example C({daily: 7, weekly: 30, monthly: 365}) (the default)."
      - A class without an entry is never pruned. An empty policy is refused.
      - The newest verified full set, the newest full set and every set a kept incremental needs are always kept.
    type: dict
  abort_incomplete_after:
    description:
      - Seconds after which O(state=pruned) aborts unfinished multipart uploads and removes objects of sets without manifest.
    type: int
    default: 86400
  config_paths:
    description: Configuration directories or files backed up by the V(config) component.
    type: list
    elements: path
    default: [/etc/mcp]
  volume_paths:
    description: Data directories backed up by the V(volumes) component.
    type: list
    elements: path
    default: [/var/lib/mcp/data]
  restore_root:
    description: Directory under which config and volumes are restored (default C(/), that is in place).
    type: path
  jobs:
    description:
      - C(pg_restore --jobs). Above 1 the dump is decompressed into O(work_dir) first (parallel restore needs a seekable file)
        and removed afterwards; 1 streams straight into C(pg_restore) unless O(postgres_restore_clean) needs the file.
    type: int
    default: 1
  postgres_restore_clean:
    description:
      - Bring the database back as it was at the backup, in place. First drop the tables, views and sequences the backup
        does not hold (created after it, for example by a later migration; C(CASCADE)), then drop and recreate what it
        holds (C(pg_restore --clean --if-exists)). The dropped relations are listed in RV(restore) under C(components.postgres.dropped).
      - The archive is decompressed into O(work_dir) for this (C(pg_restore --list)), as for O(jobs) > 1.
    type: bool
    default: true
  postgres_restore_create:
    description:
      - Drop and recreate the whole database (C(--create), with O(postgres_restore_clean)) instead of cleaning it in
        place. Needs no other sessions on the database.
    type: bool
    default: false
  mongodb_uri:
    description: MongoDB connection URI for the V(mongodb) component (passed in a 0600 temporary config file). Never logged.
    type: str
  mongodb_bin_dir:
    description: Directory holding C(mongodump)/C(mongorestore); default is the C(PATH).
    type: path
  kubernetes_namespace:
    description: Namespace exported by the V(kubernetes) component.
    type: str
    default: mcp-platform
  kubernetes_kubeconfig:
    description: Kubeconfig file (default in-cluster configuration or C(~/.kube/config)).
    type: path
  kubernetes_context:
    description: Kubeconfig context.
    type: str
  include_secrets:
    description: Include Secrets in the V(kubernetes) component.
    type: bool
    default: false
  platform_env:
    description: Env file whose C(VERSION=) is recorded in the manifest.
    type: path
    default: /etc/mcp/platform.env
  state_dir:
    description: When set, O(state=present) writes C(last_backup.json) (success or failure) there, for example V(/var/lib/mcp).
    type: path
  compression_level:
    description:
      - zstd level (1-19). The default 1 keeps a backup about a quarter faster than level 3 on a 2-core host,
        for about 13% more stored bytes (839 MB of PostgreSQL plus 817 MB of files, S3 upload-bound); raise it when
        storage or bandwidth costs more than the backup window.
    type: int
    default: 1
  compression_threads:
    description: zstd worker threads per component (0 compresses in the calling thread).
    type: int
    default: 0
  work_dir:
    description: Directory for small temporary files (tar snapshot files) and for parallel PostgreSQL restores.
    type: path
requirements:
  - zstandard (Python)
  - boto3 (Python; for O(target=s3))
  - psycopg2 (pip package C(psycopg2-binary); for the postgres component)
  - C(pg_dump) and C(pg_restore) not older than the server (for the postgres component; see O(pg_bin_dir))
  - GNU tar with ACL and xattr support (for the config and volumes components)
  - kubernetes (Python; for the kubernetes component; only when C(node_python_packages_extra) lists it)
  - C(mongodump) and C(mongorestore) of the MongoDB Database Tools (for the mongodb component; not installed by the role -
    add their package to C(node_apt_packages_extra) once MongoDB's apt repository is configured)
  - the mcp.platform.node role installs them on the managed node except where noted; run the module with
    C(ansible_python_interpreter=/opt/mcp-platform/venv/bin/python) (the venv the role creates)
seealso:
  - module: mcp.platform.mcp_backup_info
'''

EXAMPLES = r'''
- name: Nightly backup to S3
  mcp.platform.mcp_backup:
    state: present
    components: [postgres, config, volumes]
    schedule_class: daily
    s3_endpoint_url: "{{ mcp_backup_s3_endpoint }}"
    s3_bucket: mcp-backups
    s3_prefix: production
    s3_access_key: "{{ vault_s3_access_key }}"
    s3_secret_key: "{{ vault_s3_secret_key }}"
    postgres_dsn: "{{ vault_database_url }}"
    state_dir: /var/lib/mcp

- name: Verify the newest set with a restore drill
  mcp.platform.mcp_backup:
    state: verified
    drill: true
    s3_bucket: mcp-backups
    s3_prefix: production
    postgres_host: 127.0.0.1
    postgres_user: postgres

- name: What would retention delete?
  mcp.platform.mcp_backup:
    state: pruned
    retention: {daily: 7, weekly: 30, monthly: 365}
    s3_bucket: mcp-backups
    s3_prefix: production
  check_mode: true

- name: Restore the database and config of one set, in parallel
  mcp.platform.mcp_backup:
    state: restored
    backup_id: 20250101T020000Z-a1b2c3
    components: [postgres, config]
    jobs: 4
    target: local
    local_path: /srv/backups
    postgres_dsn: "{{ vault_database_url }}"
'''

RETURN = r'''
set_id:
  description: The set created, verified or restored.
  returned: state is present (not in check mode), verified or restored
  type: str
  sample: 20250101T020000Z-a1b2c3
manifest:
  description: The manifest written (components with key, size, sha256, compressed_size, format; row counts; versions).
  returned: state is present and not check mode
  type: dict
throughput_mb_s:
  description: Raw bytes produced per second of wall time over the whole set.
  returned: state is present and not check mode
  type: float
plan:
  description: What would be done (check mode of present/restored) or the set chain per restored component.
  returned: state is present in check mode, or restored
  type: dict
verification:
  description: Per-component checksum results, drill result and overall C(ok).
  returned: state is verified
  type: dict
restore:
  description: Per-component restore result.
  returned: state is restored and not check mode
  type: dict
prune:
  description: Sets kept (with reasons), deleted (with reason), aborted uploads and removed orphans.
  returned: state is pruned
  type: dict
failed_components:
  description: Components that failed.
  returned: failure of state present or verified
  type: list
  elements: str
'''

import time
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mcp.platform.plugins.module_utils.backup_common import (
    TARGET_REQUIRED_IF,
    check_target_params,
    postgres_argument_spec,
    target_argument_spec,
)
from ansible_collections.mcp.platform.plugins.module_utils.node_requirements import missing_library_msg
from ansible_collections.mcp.platform.plugins.module_utils.secrets import fail_masked

try:
    from ansible_collections.mcp.platform.plugins.module_utils import backup_engine as be
    from ansible_collections.mcp.platform.plugins.module_utils import backup_records as br
    from ansible_collections.mcp.platform.plugins.module_utils.backup_components import ComponentError
    from ansible_collections.mcp.platform.plugins.module_utils.backup_retention import DEFAULT_POLICY, RetentionError
    from ansible_collections.mcp.platform.plugins.module_utils.backup_storage import HAS_BOTO3, StorageError, make_target
    from ansible_collections.mcp.platform.plugins.module_utils.backup_stream import HAS_ZSTD, ProducerError
    IMPORT_ERROR = None
except ImportError:
    IMPORT_ERROR = traceback.format_exc()

DEFAULT_COMPONENTS = ['postgres', 'config', 'volumes']


def main():
    argument_spec = dict(
        state=dict(type='str', choices=['present', 'verified', 'restored', 'pruned'], default='present'),
        components=dict(type='list', elements='str', choices=['postgres', 'mongodb', 'kubernetes', 'config', 'volumes']),
        type=dict(type='str', choices=['full', 'incremental'], default='full'),
        schedule_class=dict(type='str', choices=['daily', 'weekly', 'monthly', 'manual'], default='manual'),
        backup_id=dict(type='str'),
        label=dict(type='str'),
        drill=dict(type='bool', default=False),
        retention=dict(type='dict'),
        abort_incomplete_after=dict(type='int', default=86400),
        config_paths=dict(type='list', elements='path', default=['/etc/mcp']),
        volume_paths=dict(type='list', elements='path', default=['/var/lib/mcp/data']),
        restore_root=dict(type='path'),
        jobs=dict(type='int', default=1),
        postgres_restore_clean=dict(type='bool', default=True),
        postgres_restore_create=dict(type='bool', default=False),
        mongodb_uri=dict(type='str', no_log=True),
        mongodb_bin_dir=dict(type='path'),
        kubernetes_namespace=dict(type='str', default='mcp-platform'),
        kubernetes_kubeconfig=dict(type='path'),
        kubernetes_context=dict(type='str'),
        include_secrets=dict(type='bool', default=False),
        platform_env=dict(type='path', default='/etc/mcp/platform.env'),
        state_dir=dict(type='path'),
        compression_level=dict(type='int', default=1),
        compression_threads=dict(type='int', default=0),
        work_dir=dict(type='path'),
    )
    argument_spec.update(target_argument_spec())
    argument_spec.update(postgres_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, required_if=TARGET_REQUIRED_IF, supports_check_mode=True)

    if IMPORT_ERROR:
        fail_masked(module, 'cannot import the mcp.platform backup engine', exception=IMPORT_ERROR)
    if not HAS_ZSTD:
        fail_masked(module, missing_library_msg('zstandard'))
    p = module.params
    if p['target'] == 's3' and not HAS_BOTO3:
        fail_masked(module, missing_library_msg('boto3', reason='for target=s3'))
    check_target_params(module)
    if not 1 <= p['compression_level'] <= 19:
        fail_masked(module, 'compression_level must be between 1 and 19, got %d' % p['compression_level'])
    if p['jobs'] < 1:
        fail_masked(module, 'jobs must be at least 1')
    if p['abort_incomplete_after'] < 0:
        fail_masked(module, 'abort_incomplete_after must not be negative')
    comps = p['components']
    if comps is not None:
        if not comps:
            fail_masked(module, 'components must not be empty')
        dupes = sorted(set(c for c in comps if comps.count(c) > 1))
        if dupes:
            fail_masked(module, 'components lists %s more than once' % ', '.join(dupes))
    if p['backup_id'] and not be.bm.is_set_id(p['backup_id']):
        fail_masked(module, 'backup_id %r is not a backup set id (expected YYYYmmddTHHMMSSZ-xxxxxx)' % p['backup_id'])
    if p['label'] is not None and not be.bm.is_label(p['label']):
        fail_masked(module, 'label %r is not valid (letters, digits, ".", "_", ":", "+", "-"; at most 128 characters, '
                    'starting with a letter or digit)' % p['label'])
    if p['state'] == 'present' and 'postgres' in (comps or DEFAULT_COMPONENTS) and \
            not (p['postgres_dsn'] or p['postgres_host'] or p['postgres_dbname']):
        fail_masked(module, 'the postgres component needs postgres_dsn or postgres_host/postgres_dbname '
                    '(or leave postgres out of components)')

    try:
        engine = be.Engine(make_target(p), dict(p))
        if p['state'] == 'present':
            run_present(module, engine, comps or DEFAULT_COMPONENTS)
        elif p['state'] == 'verified':
            res = engine.verify(set_id=p['backup_id'], drill=p['drill'] and not module.check_mode, record=not module.check_mode,
                                label=p['label'])
            if not res['ok']:
                failed = res['failed_components'] or ['postgres drill']
                fail_masked(module, 'backup set %s failed verification: %s' % (res['set_id'], '; '.join(
                    '%s: %s' % (n, res['components'][n]['error']) for n in res['failed_components']) or res['drill'].get('error')),
                    set_id=res['set_id'], verification=res, failed_components=failed)
            module.exit_json(changed=False, set_id=res['set_id'], verification=res)
        elif p['state'] == 'restored':
            res = engine.restore(set_id=p['backup_id'], components=comps, restore_root=p['restore_root'], jobs=p['jobs'],
                                 clean=p['postgres_restore_clean'], create=p['postgres_restore_create'], check_mode=module.check_mode,
                                 label=p['label'])
            module.exit_json(changed=True, set_id=res['set_id'], plan=res['plan'], restore=res['components'])
        else:
            policy = DEFAULT_POLICY if p['retention'] is None else p['retention']
            res = engine.prune(policy, abort_incomplete_after=p['abort_incomplete_after'], check_mode=module.check_mode)
            before = sorted([k['id'] for k in res['keep']] + [d['id'] for d in res['delete']])
            diff = {'before': {'sets': before}, 'after': {'sets': sorted(k['id'] for k in res['keep'])}}
            module.exit_json(changed=res.pop('changed'), prune=res, diff=diff)
    except be.BackupError as exc:
        fail_masked(module, str(exc), **exc.details)
    except (StorageError, ComponentError, ProducerError, RetentionError) as exc:
        fail_masked(module, str(exc))


def run_present(module, engine, components):
    p = module.params
    if module.check_mode:
        plan = engine.plan_create(components, p['type'])
        module.exit_json(changed=True, plan=plan, diff={'before': {}, 'after': {'new_set': plan}})
    t0 = time.time()
    try:
        manifest = engine.create(components, backup_type=p['type'], schedule_class=p['schedule_class'], platform_env=p['platform_env'],
                                 label=p['label'])
    except (be.BackupError, StorageError) as exc:
        details = getattr(exc, 'details', {}) or {}
        if p['state_dir']:
            record = {'status': 'failed', 'error': str(exc), 'target': engine.target.describe(), 'components': components, 'label': p['label'],
                      'finished_at': be.bm.iso(time.time())}
            record.update(details)
            br.write_last_backup(p['state_dir'], record)
        fail_masked(module, str(exc), **details)
    seconds = time.time() - t0
    raw = sum(c['size'] for c in manifest['components'].values())
    stored = sum(c['compressed_size'] for c in manifest['components'].values())
    summary = {'status': 'success', 'set_id': manifest['set_id'], 'target': engine.target.describe(), 'type': manifest['type'],
               'schedule_class': manifest['schedule_class'], 'label': manifest.get('label'), 'started_at': be.bm.iso(manifest['started_at']),
               'finished_at': be.bm.iso(manifest['finished_at']), 'duration_seconds': round(seconds, 3), 'raw_bytes': raw,
               'stored_bytes': stored, 'components': sorted(manifest['components'])}
    if p['state_dir']:
        br.write_last_backup(p['state_dir'], summary)
    for warning in manifest['warnings']:
        module.warn(warning)
    module.exit_json(changed=True, set_id=manifest['set_id'], manifest=manifest, summary=summary,
                     throughput_mb_s=round(raw / 1048576.0 / max(seconds, 0.001), 2),
                     diff={'before': {}, 'after': {'new_set': manifest['set_id']}})


if __name__ == '__main__':
    main()
