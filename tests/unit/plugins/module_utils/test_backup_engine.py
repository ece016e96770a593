# -*- coding: utf-8 -*-
"""Backup engine: what it refuses before any server or binary is involved (a local target in a temp folder).

The backups themselves (moto S3, PostgreSQL, GNU tar) are in tests/component/plugins/module_utils/test_backup_engine.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shutil

import pytest

pytest.importorskip('zstandard')

from ansible_collections.mcp.platform.plugins.module_utils.backup_engine import BackupError, Engine  # noqa: E402
from ansible_collections.mcp.platform.plugins.module_utils.backup_storage import LocalTarget, StorageError, make_target  # noqa: E402

SECRET = 'sup3r-s3cret-KEY-do-not-print'


def test_unknown_and_missing_inputs(tmp_path):
    eng = Engine(LocalTarget(str(tmp_path / 's')), {'config_paths': [str(tmp_path / 'nope')]})
    with pytest.raises(BackupError) as err:
        eng.create(['config'])
    assert 'config_paths' in str(err.value) and 'does not exist' in str(err.value)
    with pytest.raises(BackupError) as err:
        eng.verify()
    assert 'no backup set' in str(err.value)
    with pytest.raises(StorageError):
        make_target({'target': 's3', 's3_bucket': ''})


def test_mongodb_without_mongodump_fails_clearly(tmp_path):
    if shutil.which('mongodump'):
        pytest.skip('mongodump is installed here; covered by test_mongodb_roundtrip')
    eng = Engine(LocalTarget(str(tmp_path / 's')), {'mongodb_uri': 'mongodb://u:%s@127.0.0.1:1/mcp' % SECRET})
    with pytest.raises(BackupError) as err:
        eng.create(['mongodb'])
    assert 'mongodb: mongodump not found' in str(err.value) and SECRET not in str(err.value)
    assert eng.info()['count'] == 0 and LocalTarget(str(tmp_path / 's')).list_incomplete() == []
