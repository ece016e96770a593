# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by mcp_backup and mcp_backup_info (they mirror doc_fragments/backup.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mcp.platform.plugins.module_utils.postgres import postgres_argument_spec as pg_connection_spec
from ansible_collections.mcp.platform.plugins.module_utils.s3 import check_s3_params, s3_argument_spec
from ansible_collections.mcp.platform.plugins.module_utils.validation import ValidationError


def target_argument_spec():
    """Where backup sets live: the S3 vocabulary (``s3.py``, fragment ``mcp.platform.s3``) or a local folder."""
    spec = dict(
        target=dict(type='str', choices=['s3', 'local'], default='s3'),
        local_path=dict(type='path'),
        part_size_mb=dict(type='int', default=16),
        max_in_flight=dict(type='int', default=4),
    )
    spec.update(s3_argument_spec())
    return spec


def postgres_argument_spec():
    """The shared PostgreSQL vocabulary (``postgres.py``, fragment ``mcp.platform.postgres``) plus the backup's tools."""
    spec = pg_connection_spec()
    spec.update(
        postgres_maintenance_db=dict(type='str', default='postgres'),
        pg_bin_dir=dict(type='path'),
    )
    return spec


TARGET_REQUIRED_IF = [('target', 's3', ['s3_bucket']), ('target', 'local', ['local_path'])]


def check_target_params(module):
    """Extra validation with messages naming the option."""
    params = module.params
    if params['part_size_mb'] < 5:
        module.fail_json(msg='part_size_mb must be at least 5 (the S3 minimum part size), got %d' % params['part_size_mb'])
    if params['part_size_mb'] > 5120:
        module.fail_json(msg='part_size_mb must be at most 5120 (the S3 maximum part size), got %d' % params['part_size_mb'])
    if not 1 <= params['max_in_flight'] <= 64:
        module.fail_json(msg='max_in_flight must be between 1 and 64, got %d' % params['max_in_flight'])
    if params['target'] == 's3':
        try:
            check_s3_params(params)
        except ValidationError as exc:
            module.fail_json(msg=str(exc))


def missing_libraries():
    """Names of missing optional libraries with their import errors."""
    from ansible_collections.mcp.platform.plugins.module_utils import backup_storage, backup_stream  # pylint: disable=import-outside-toplevel
    out = []
    if not backup_stream.HAS_ZSTD:
        out.append(('zstandard', backup_stream.ZSTD_IMPORT_ERROR))
    return out, backup_storage
