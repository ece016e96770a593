# -*- coding: utf-8 -*-
"""mcp_backup / mcp_backup_info end to end through `ansible localhost -m ...` (subprocess, no mocks; the
``run_module_json`` fixture, tests/component/conftest.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest
from support.ports import free_port

SECRET = 'Zz-very-secret-s3-key-0451'
PG_SECRET = 'Zz-very-secret-pg-password-0451'


@pytest.mark.parametrize('args, words', [
    ({'components': ['postgres', 'nosuch'], 'target': 'local', 'local_path': '/tmp/x'}, ['components', 'nosuch']),
    ({'schedule_class': 'hourly', 'target': 'local', 'local_path': '/tmp/x'}, ['schedule_class', 'hourly']),
    ({'components': ['config']}, ['s3_bucket']),
    ({'state': 'pruned', 'retention': {}, 'target': 'local', 'local_path': '/tmp/mcp-empty-policy'}, ['retention', 'empty']),
    ({'components': ['config'], 'target': 'local', 'local_path': '/tmp/x', 'part_size_mb': 1}, ['part_size_mb']),
    ({'components': ['postgres'], 'target': 'local', 'local_path': '/tmp/x'}, ['postgres_dsn']),
    ({'state': 'verified', 'backup_id': 'latest', 'target': 'local', 'local_path': '/tmp/x'}, ['backup_id']),
    # a wrong pg_bin_dir is an error, not a silent fall back to whichever pg_dump the PATH has
    ({'components': ['postgres'], 'target': 'local', 'local_path': '/tmp/mcp-bad-bin', 'postgres_dsn': 'host=127.0.0.1 port=1',
      'pg_bin_dir': '/nonexistent/pg/bin'}, ['pg_dump not found in /nonexistent/pg/bin (pg_bin_dir)']),
])
def test_bad_input_named(run_module_json, args, words):
    rc, out, result = run_module_json('mcp_backup', args)
    assert rc != 0, out
    assert result is not None and result.get('failed'), out
    for word in words:
        assert word in result['msg'], result['msg']
    assert 'Traceback (most recent call last)' not in out
    assert result.get('exception') in (None, '(traceback unavailable)')


def test_secrets_never_printed_at_vvv(run_module_json, tmp_path):
    port = free_port()
    cfg = tmp_path / 'cfg'
    cfg.mkdir()
    (cfg / 'a').write_text('x')
    args = {'components': ['config', 'postgres'], 's3_endpoint_url': 'http://127.0.0.1:%d' % port, 's3_bucket': 'mcp-backups',
            's3_access_key': 'AKIAEXAMPLE', 's3_secret_key': SECRET, 's3_retries': 1, 'config_paths': [str(cfg)],
            'postgres_dsn': 'postgresql://mcp:%s@127.0.0.1:%d/mcp' % (PG_SECRET, port), 'postgres_password': PG_SECRET}
    rc, out, dummy = run_module_json('mcp_backup', args, verbosity=3)
    assert rc != 0
    assert 'HeadBucket' in out and 'mcp-backups' in out
    assert SECRET not in out and PG_SECRET not in out
    assert 'Traceback (most recent call last)' not in out


def test_module_create_info_prune_local(run_module_json, tmp_path):
    cfg = tmp_path / 'etc' / 'mcp'
    cfg.mkdir(parents=True)
    (cfg / 'platform.env').write_text('VERSION=2.0.1\n')
    store, state, metrics = tmp_path / 'store', tmp_path / 'state', tmp_path / 'prom' / 'mcp_backup.prom'
    base = {'target': 'local', 'local_path': str(store)}

    rc, out, res = run_module_json('mcp_backup', dict(base, components=['config'], config_paths=[str(cfg)]), check=True)
    assert rc == 0 and res['changed'] and res['plan']['type'] == 'full', out
    assert not store.exists() or not list(store.iterdir())

    args = dict(base, components=['config'], config_paths=[str(cfg)], schedule_class='daily', state_dir=str(state),
                platform_env=str(cfg / 'platform.env'))
    rc, out, res = run_module_json('mcp_backup', args)
    assert rc == 0 and res['changed'], out
    set_id = res['set_id']
    assert res['manifest']['platform_version'] == '2.0.1'
    last = json.loads((state / 'last_backup.json').read_text())
    assert last['status'] == 'success' and last['set_id'] == set_id

    rc, out, res = run_module_json('mcp_backup', dict(base, state='verified'))
    assert rc == 0 and res['verification']['ok'] and not res['changed'], out

    rc, out, res = run_module_json('mcp_backup_info', dict(base, metrics_file=str(metrics), max_age=3600))
    assert rc == 0, out
    assert res['count'] == 1 and res['newest_good'] == {'daily': set_id} and res['stale'] is False
    assert res['sets'][0]['verification'] == 'ok'
    text = metrics.read_text()
    assert 'mcp_backup_last_success_timestamp_seconds{target="file://%s"}' % store in text

    rc, out, res = run_module_json('mcp_backup', dict(base, state='pruned', retention={'daily': 7}, abort_incomplete_after=0), check=True)
    assert rc == 0 and not res['changed'] and res['prune']['keep'][0]['id'] == set_id, out

    # a failed run is recorded as failed and does not touch the good set
    args['config_paths'] = [str(tmp_path / 'missing')]
    rc, out, res = run_module_json('mcp_backup', args)
    assert rc != 0 and 'config' in res['msg'] and res['failed_components'] == ['config'], out
    assert json.loads((state / 'last_backup.json').read_text())['status'] == 'failed'
    rc, out, res = run_module_json('mcp_backup_info', base)
    assert res['count'] == 1 and res['last_good']['id'] == set_id
