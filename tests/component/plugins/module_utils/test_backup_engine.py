# -*- coding: utf-8 -*-
"""Backup engine against real servers: a moto S3 server and a throwaway PostgreSQL 15 cluster (the ``moto`` and
``pg_scram_server`` fixtures, tests/component/conftest.py), and GNU tar on trees with real owners (root).

No mocks: both servers are started as subprocesses for the session and torn down at the end.
Skips (with the reason) when not root / no `postgres` user / no PostgreSQL 15 binaries.
The checks that need neither are in tests/unit/plugins/module_utils/test_backup_engine.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest
from support.trees import tree_state

boto3 = pytest.importorskip('boto3')
psycopg2 = pytest.importorskip('psycopg2')
pytest.importorskip('zstandard')

from support import ROOT  # noqa: E402
from support.moto import start_moto  # noqa: E402
from support.ports import free_port  # noqa: E402

from ansible_collections.mcp.platform.plugins.module_utils import backup_manifest as bm  # noqa: E402
from ansible_collections.mcp.platform.plugins.module_utils.backup_engine import BackupError, Engine  # noqa: E402
from ansible_collections.mcp.platform.plugins.module_utils.backup_records import metrics_text, write_metrics  # noqa: E402
from ansible_collections.mcp.platform.plugins.module_utils.backup_retention import RetentionError  # noqa: E402
from ansible_collections.mcp.platform.plugins.module_utils.backup_storage import LocalTarget, StorageError, make_target  # noqa: E402

SECRET = 'sup3r-s3cret-KEY-do-not-print'
PG_PASSWORD = 'pg-Pa55word-hidden'


@pytest.fixture(scope='module')
def pg(pg_scram_server):
    """The scram server's connection options, its database seeded (seed_database)."""
    seed_database(pg_scram_server)
    return pg_scram_server


def pg_conn(params):
    return psycopg2.connect(host=params['postgres_host'], port=params['postgres_port'], user=params['postgres_user'],
                            password=params['postgres_password'], dbname=params['postgres_dbname'])


def run_sql(params, *statements):
    conn = pg_conn(params)
    cur = conn.cursor()
    for sql in statements:
        cur.execute(sql)
    conn.commit()
    conn.close()


def seed_database(params):
    run_sql(
        params,
        'DROP SCHEMA IF EXISTS app CASCADE; DROP TABLE IF EXISTS public.added_later, public.users, public."Mixed Case", public.empty_t CASCADE',
        'CREATE SCHEMA app',
        'CREATE TABLE public.users (id serial PRIMARY KEY, name text NOT NULL, created timestamptz DEFAULT now())',
        "INSERT INTO public.users (name) SELECT 'user-' || g FROM generate_series(1, 2000) g",
        'CREATE TABLE app.events (id bigint PRIMARY KEY, user_id int REFERENCES public.users(id), payload jsonb)',
        "INSERT INTO app.events SELECT g, 1 + g % 2000, jsonb_build_object('n', g, 'pad', repeat('x', 50)) FROM generate_series(1, 20000) g",
        'CREATE TABLE public."Mixed Case" ("Key" text PRIMARY KEY, v bytea)',
        "INSERT INTO public.\"Mixed Case\" SELECT 'k' || g, decode(md5(g::text), 'hex') FROM generate_series(1, 300) g",
        'CREATE TABLE public.empty_t (x int)')


def db_state(params):
    """Every table's full contents, hashed, by name."""
    conn = pg_conn(params)
    cur = conn.cursor()
    cur.execute("SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
                "AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2")
    state = {}
    for schema, table in cur.fetchall():
        cur.execute('SELECT * FROM "%s"."%s" ORDER BY 1' % (schema, table))
        rows = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in cur.fetchall()]
        state['%s.%s' % (schema, table)] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    conn.close()
    return state


def mutate_database(params):
    run_sql(
        params,
        'DELETE FROM app.events WHERE id % 3 = 0',
        "UPDATE public.users SET name = 'changed' WHERE id < 100",
        'DELETE FROM public."Mixed Case"',
        'INSERT INTO public.empty_t VALUES (1), (2)',
        'CREATE TABLE public.added_later (x int)')


# ------------------------------------------------------------------ files

def has_user_xattr(path):
    try:
        os.setxattr(path, 'user.mcp_probe', b'1')
        os.removexattr(path, 'user.mcp_probe')
        return True
    except OSError:
        return False


def make_tree(root, variant=0):
    os.makedirs(os.path.join(root, 'sub', 'deep'), exist_ok=True)
    files = {
        'platform.env': b'VERSION=1.4.2\nDATABASE_URL=postgresql://db/mcp\n',
        'sub/app.yml': b'replicas: 3\n' * (variant + 1),
        'sub/deep/blob.bin': os.urandom(200000),
        'secret.key': b'private\n',
    }
    for rel, data in files.items():
        with open(os.path.join(root, rel), 'wb') as fh:
            fh.write(data)
    os.chmod(os.path.join(root, 'secret.key'), 0o600)
    os.chown(os.path.join(root, 'secret.key'), 1234, 2345)
    os.chmod(os.path.join(root, 'sub', 'app.yml'), 0o640)
    os.chown(os.path.join(root, 'sub'), 1001, 1001)
    os.chmod(os.path.join(root, 'sub', 'deep'), 0o2750)
    if not os.path.lexists(os.path.join(root, 'link-to-env')):
        os.symlink('platform.env', os.path.join(root, 'link-to-env'))
    if not os.path.exists(os.path.join(root, 'hardlink.env')):
        os.link(os.path.join(root, 'platform.env'), os.path.join(root, 'hardlink.env'))
    if has_user_xattr(root):
        os.setxattr(os.path.join(root, 'sub', 'app.yml'), 'user.mcp', b'tagged')


@pytest.fixture
def trees(tmp_path):
    base = tmp_path / 'host'
    cfg = str(base / 'etc' / 'mcp')
    vol = str(base / 'var' / 'lib' / 'mcp' / 'data')
    make_tree(cfg)
    make_tree(vol, variant=1)
    return cfg, vol


def mutate_tree(root):
    os.unlink(os.path.join(root, 'secret.key'))
    with open(os.path.join(root, 'sub', 'app.yml'), 'wb') as fh:
        fh.write(b'corrupted by operator\n')
    os.chmod(os.path.join(root, 'platform.env'), 0o666)
    os.chown(os.path.join(root, 'platform.env'), 42, 42)
    with open(os.path.join(root, 'stray.tmp'), 'wb') as fh:
        fh.write(b'should disappear')


# ------------------------------------------------------------------ targets

def new_bucket(endpoint, **kw):
    name = 'mcp-test-%s' % uuid.uuid4().hex[:10]
    boto3.client('s3', endpoint_url=endpoint, aws_access_key_id='test', aws_secret_access_key=SECRET,
                 region_name='us-east-1').create_bucket(Bucket=name)
    params = {'target': 's3', 's3_endpoint_url': endpoint, 's3_bucket': name, 's3_prefix': 'lab/backups',
              's3_access_key': 'test', 's3_secret_key': SECRET, 'part_size_mb': 5, 's3_retries': 2}
    params.update(kw)
    return params


def s3_client(params):
    return boto3.client('s3', endpoint_url=params['s3_endpoint_url'], aws_access_key_id=params['s3_access_key'],
                        aws_secret_access_key=SECRET, region_name='us-east-1')


def engine_for(target_params, pg_params=None, **opts):
    options = dict(target_params)
    options.update(pg_params or {})
    options.update(opts)
    return Engine(make_target(options), options)


# ------------------------------------------------------------------ tests

def test_roundtrip_s3(moto, pg, trees):
    cfg, vol = trees
    params = new_bucket(moto)
    eng = engine_for(params, pg, config_paths=[cfg], volume_paths=[vol])
    before_db, before_cfg, before_vol = db_state(pg), tree_state(cfg), tree_state(vol)
    env_file = os.path.join(cfg, 'platform.env')

    manifest = eng.create(['postgres', 'config', 'volumes'], schedule_class='daily', platform_env=env_file)
    assert manifest['platform_version'] == '1.4.2'
    assert manifest['postgres_server_version'].startswith('15')
    assert manifest['row_counts']['app.events'] == 20000
    assert manifest['row_counts']['public.Mixed Case'] == 300
    assert manifest['type'] == 'full' and manifest['schedule_class'] == 'daily'

    # layout, SSE and the manifest-last contract
    client = s3_client(params)
    keys = sorted(o['Key'] for o in client.list_objects_v2(Bucket=params['s3_bucket'])['Contents'])
    sid = manifest['set_id']
    assert 'lab/backups/%s/postgres.pgdump.zst' % sid in keys
    assert 'lab/backups/%s/manifest.json' % sid in keys
    head = client.head_object(Bucket=params['s3_bucket'], Key='lab/backups/%s/postgres.pgdump.zst' % sid)
    assert head.get('ServerSideEncryption') == 'AES256'

    mutate_database(pg)
    mutate_tree(cfg)
    shutil.rmtree(os.path.join(vol, 'sub'))
    assert db_state(pg) != before_db

    # a later migration: a new table with a foreign key to a backed-up one (it would block pg_restore --clean)
    conn = pg_conn(pg)
    with conn.cursor() as cur:
        cur.execute('CREATE TABLE app.user_notes (id serial PRIMARY KEY, user_id int REFERENCES public.users(id), note text)')
        cur.execute("INSERT INTO app.user_notes (user_id, note) VALUES (1, 'after the backup')")
        cur.execute('CREATE VIEW public.note_view AS SELECT n.note, u.name FROM app.user_notes n JOIN public.users u ON u.id = n.user_id')
    conn.commit()
    conn.close()

    result = eng.restore(components=['postgres', 'config', 'volumes'])
    assert result['set_id'] == sid
    # the database as it was at the backup: what was created later is gone
    assert sorted(result['components']['postgres']['dropped']) == ['app.user_notes', 'public.added_later', 'public.note_view']
    assert db_state(pg) == before_db
    assert tree_state(cfg) == before_cfg
    assert tree_state(vol) == before_vol


def test_restore_parallel_jobs_and_drill(moto, pg):
    seed_database(pg)
    params = new_bucket(moto)
    eng = engine_for(params, pg)
    before = db_state(pg)
    manifest = eng.create(['postgres'])
    ver = eng.verify(drill=True)
    assert ver['ok'], ver
    assert ver['drill']['ok'] and ver['drill']['rows'] == sum(manifest['row_counts'].values())
    record = json.loads(s3_client(params).get_object(Bucket=params['s3_bucket'],
                                                     Key='lab/backups/%s/verification.json' % manifest['set_id'])['Body'].read())
    assert record['ok'] is True
    # the scratch database is gone
    conn = pg_conn(pg)
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'mcp_drill_%'")
    assert cur.fetchone()[0] == 0
    conn.close()

    mutate_database(pg)
    eng.restore(components=['postgres'], jobs=2, create=True)
    assert db_state(pg) == before
    info = eng.info()
    assert info['last_verified_restore'] is not None
    assert info['sets'][0]['verification'] == 'ok'


def test_incremental_chain_restore(moto, trees, tmp_path):
    cfg, vol = trees
    params = new_bucket(moto)
    eng = engine_for(params, config_paths=[cfg], volume_paths=[vol])
    full = eng.create(['config', 'volumes'], schedule_class='weekly')
    with open(os.path.join(cfg, 'new-after-full.txt'), 'wb') as fh:
        fh.write(b'one')
    os.unlink(os.path.join(vol, 'platform.env'))
    inc1 = eng.create(['config', 'volumes'], backup_type='incremental', schedule_class='daily')
    assert inc1['type'] == 'incremental' and inc1['parent'] == full['set_id']
    assert inc1['components']['config']['compressed_size'] < full['components']['config']['compressed_size']
    os.chmod(os.path.join(cfg, 'new-after-full.txt'), 0o604)
    with open(os.path.join(vol, 'sub', 'second.txt'), 'wb') as fh:
        fh.write(b'two' * 1000)
    state_cfg, state_vol = tree_state(cfg), tree_state(vol)
    inc2 = eng.create(['config', 'volumes'], backup_type='incremental', schedule_class='daily')
    assert inc2['parent'] == inc1['set_id']

    # restore the chain into an empty root
    root = str(tmp_path / 'restored')
    result = eng.restore(set_id=inc2['set_id'], restore_root=root)
    assert result['plan']['config'] == [full['set_id'], inc1['set_id'], inc2['set_id']]
    assert tree_state(root + cfg) == state_cfg
    assert tree_state(root + vol) == state_vol
    # and restoring the middle of the chain gives that point in time
    root1 = str(tmp_path / 'restored1')
    eng.restore(set_id=inc1['set_id'], restore_root=root1, components=['config'])
    assert os.path.exists(os.path.join(root1 + cfg, 'new-after-full.txt'))
    assert os.stat(os.path.join(root1 + cfg, 'new-after-full.txt')).st_mode & 0o777 != 0o604


def test_corrupted_object_fails_verify_and_restore(moto, trees):
    cfg, vol = trees
    params = new_bucket(moto)
    eng = engine_for(params, config_paths=[cfg], volume_paths=[vol])
    manifest = eng.create(['config', 'volumes'])
    key = 'lab/backups/' + manifest['components']['volumes']['key']
    client = s3_client(params)
    body = bytearray(client.get_object(Bucket=params['s3_bucket'], Key=key)['Body'].read())
    body[len(body) // 2] ^= 0x01
    client.put_object(Bucket=params['s3_bucket'], Key=key, Body=bytes(body))

    ver = eng.verify()
    assert not ver['ok']
    assert ver['failed_components'] == ['volumes']
    assert 'SHA-256 mismatch' in ver['components']['volumes']['error']
    assert ver['components']['config']['ok']
    with pytest.raises(BackupError) as err:
        eng.restore(set_id=manifest['set_id'])
    assert 'volumes' in str(err.value) and 'refusing' in str(err.value)
    # a failed set is not "good": no default restore, not counted by metrics
    with pytest.raises(BackupError):
        eng.restore()
    info = eng.info()
    assert info['last_good'] is None
    assert 'mcp_backup_last_success_timestamp_seconds{target="s3://%s/lab/backups"} 0.0' % params['s3_bucket'] in metrics_text(info)


KILL_SCRIPT = r'''
import sys
sys.path.insert(0, %(farm)r)
from ansible_collections.mcp.platform.plugins.module_utils.backup_engine import Engine
from ansible_collections.mcp.platform.plugins.module_utils.backup_storage import make_target
opts = %(opts)r
Engine(make_target(opts), opts).create(['config', 'volumes'], schedule_class='daily')
print('FINISHED')
'''


def test_backup_killed_halfway(moto, trees, tmp_path):
    cfg, vol = trees
    big = os.path.join(vol, 'big.bin')
    with open(big, 'wb') as fh:
        for dummy in range(96):
            fh.write(os.urandom(1024 * 1024))
    params = new_bucket(moto, max_in_flight=1)
    eng = engine_for(params, config_paths=[cfg], volume_paths=[cfg])
    good = eng.create(['config'], schedule_class='daily')

    opts = dict(params, config_paths=[cfg], volume_paths=[vol], compression_level=1)
    script = tmp_path / 'kill.py'
    script.write_text(KILL_SCRIPT % {'farm': os.path.join(ROOT, '.build', 'collections'), 'opts': opts})
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    client = s3_client(params)
    deadline = time.time() + 60
    killed = False
    while time.time() < deadline and proc.poll() is None:
        uploads = client.list_multipart_uploads(Bucket=params['s3_bucket']).get('Uploads', [])
        parts = []
        for upload in uploads:
            try:
                parts += client.list_parts(Bucket=params['s3_bucket'], Key=upload['Key'], UploadId=upload['UploadId']).get('Parts', [])
            except client.exceptions.NoSuchUpload:
                pass  # the small config component completed in between
        # halfway: the small config object of the new set is stored and the big volumes upload has parts
        # (killed earlier, the set would have no stored object at all and nothing to call incomplete)
        stored = [o['Key'] for o in client.list_objects_v2(Bucket=params['s3_bucket']).get('Contents', [])
                  if good['set_id'] not in o['Key']]
        if parts and stored:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.05)
    proc.wait()
    assert killed, 'backup finished before it could be killed: %s' % proc.stdout.read()

    info = eng.info()
    assert [s['id'] for s in info['sets']] == [good['set_id']]
    assert info['last_good']['id'] == good['set_id']
    assert len(info['incomplete_sets']) == 1
    assert client.list_multipart_uploads(Bucket=params['s3_bucket']).get('Uploads')

    # a prune with the default 24h limit leaves the fresh upload alone; with 0 it aborts it
    res = eng.prune({'daily': 7}, abort_incomplete_after=86400)
    assert res['aborted_uploads'] == [] and res['orphans_removed'] == []
    dry = eng.prune({'daily': 7}, abort_incomplete_after=0, check_mode=True)
    assert len(dry['aborted_uploads']) == 1
    assert client.list_multipart_uploads(Bucket=params['s3_bucket']).get('Uploads')
    res = eng.prune({'daily': 7}, abort_incomplete_after=0)
    assert len(res['aborted_uploads']) == 1
    assert not client.list_multipart_uploads(Bucket=params['s3_bucket']).get('Uploads')
    assert eng.info()['incomplete_sets'] == []
    assert [s['id'] for s in eng.info()['sets']] == [good['set_id']]


def test_postgres_unreachable_fails_whole_set(moto, trees):
    cfg, vol = trees
    params = new_bucket(moto)
    eng = engine_for(params, {'postgres_host': '127.0.0.1', 'postgres_port': free_port(), 'postgres_user': 'mcp',
                              'postgres_password': PG_PASSWORD, 'postgres_dbname': 'x'}, config_paths=[cfg], volume_paths=[vol])
    with pytest.raises(BackupError) as err:
        eng.create(['config', 'postgres', 'volumes'])
    msg = str(err.value)
    assert 'postgres' in msg and 'cannot connect' in msg
    assert PG_PASSWORD not in msg
    assert err.value.details['failed_components'] == ['postgres']
    client = s3_client(params)
    assert client.list_objects_v2(Bucket=params['s3_bucket']).get('KeyCount', 0) == 0
    assert not client.list_multipart_uploads(Bucket=params['s3_bucket']).get('Uploads')
    assert eng.info()['count'] == 0


def test_s3_stopped_and_wrong_credentials(trees):
    cfg, vol = trees
    port = free_port()
    params = {'target': 's3', 's3_endpoint_url': 'http://127.0.0.1:%d' % port, 's3_bucket': 'mcp-backups', 's3_access_key': 'AKIATEST',
              's3_secret_key': SECRET, 'part_size_mb': 5, 's3_retries': 1}
    eng = engine_for(params, config_paths=[cfg])
    t0 = time.time()
    with pytest.raises(StorageError) as err:
        eng.create(['config'])
    assert 'HeadBucket' in str(err.value) and 'mcp-backups' in str(err.value)
    assert SECRET not in str(err.value)
    assert time.time() - t0 < 60

    proc, endpoint = start_moto({'INITIAL_NO_AUTH_ACTION_COUNT': '3'})
    try:
        iam = boto3.client('iam', endpoint_url=endpoint, aws_access_key_id='x', aws_secret_access_key='y', region_name='us-east-1')
        iam.create_user(UserName='backup')
        key = iam.create_access_key(UserName='backup')['AccessKey']
        iam.put_user_policy(UserName='backup', PolicyName='all', PolicyDocument=json.dumps(
            {'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': '*', 'Resource': '*'}]}))
        boto3.client('s3', endpoint_url=endpoint, aws_access_key_id=key['AccessKeyId'], aws_secret_access_key=key['SecretAccessKey'],
                     region_name='us-east-1').create_bucket(Bucket='mcp-backups')
        params.update(s3_endpoint_url=endpoint, s3_access_key=key['AccessKeyId'])
        eng = engine_for(params, config_paths=[cfg])
        with pytest.raises(StorageError) as err:
            eng.create(['config'])
        assert 's3_secret_key' in str(err.value) and SECRET not in str(err.value)
        params['s3_secret_key'] = key['SecretAccessKey']
        good = engine_for(params, config_paths=[cfg])
        assert good.info()['count'] == 0  # nothing was marked good by the failed attempt
        good.create(['config'])
        assert good.info()['count'] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_local_target_roundtrip_modes_and_prune(trees, tmp_path):
    cfg, vol = trees
    store = str(tmp_path / 'store')
    eng = engine_for({'target': 'local', 'local_path': store}, config_paths=[cfg], volume_paths=[vol])
    before = tree_state(cfg)
    m1 = eng.create(['config', 'volumes'], schedule_class='daily')
    m2 = eng.create(['config'], schedule_class='monthly')
    for dirpath, dummy, files in os.walk(store):
        for name in files:
            assert os.stat(os.path.join(dirpath, name)).st_mode & 0o777 == 0o600
    mutate_tree(cfg)
    eng.restore(set_id=m1['set_id'], components=['config'])
    assert tree_state(cfg) == before

    with pytest.raises(RetentionError):
        eng.prune({})
    later = time.time() + 40 * 86400
    dry = eng.prune({'daily': 7, 'monthly': 365}, check_mode=True, now=later)
    assert [d['id'] for d in dry['delete']] == [m1['set_id']]
    assert 'older than daily window' in dry['delete'][0]['reason']
    assert eng.info()['count'] == 2
    eng.prune({'daily': 7, 'monthly': 365}, now=later)
    assert [s['id'] for s in eng.info()['sets']] == [m2['set_id']]
    assert not os.path.exists(os.path.join(store, m1['set_id']))
    # the newest full set is never deleted, whatever the policy
    res = eng.prune({'daily': 1, 'monthly': 1}, now=later + 1000 * 86400)
    assert res['delete'] == [] and 'newest full set' in res['keep'][0]['reasons']

    metrics = str(tmp_path / 'textfile' / 'mcp_backup.prom')
    write_metrics(metrics, eng.info())
    text = open(metrics).read()
    assert 'mcp_backup_last_size_bytes' in text and 'mcp_backup_last_duration_seconds' in text


def test_local_partial_files_are_incomplete(trees, tmp_path):
    cfg, dummy = trees
    target = LocalTarget(str(tmp_path / 'store'))
    writer = target.open_writer('%s/config.tar.zst' % bm.new_set_id())
    writer.write(b'half')
    eng = Engine(target, {'config_paths': [cfg]})
    assert eng.info()['count'] == 0
    assert len(target.list_incomplete()) == 1
    res = eng.prune({'daily': 7}, abort_incomplete_after=0)
    assert len(res['aborted_uploads']) == 1 and target.list_incomplete() == []


@pytest.mark.skipif(not os.environ.get('MCP_TEST_MONGODB_URI'), reason='no MongoDB server here: set MCP_TEST_MONGODB_URI to run')
def test_mongodb_roundtrip(tmp_path):
    eng = Engine(LocalTarget(str(tmp_path / 's')), {'mongodb_uri': os.environ['MCP_TEST_MONGODB_URI']})
    manifest = eng.create(['mongodb'])
    assert manifest['components']['mongodb']['size'] > 0
    assert eng.verify()['ok']
    eng.restore(components=['mongodb'])


@pytest.mark.skipif(not os.environ.get('MCP_TEST_KUBECONFIG'), reason='no Kubernetes API server here: set MCP_TEST_KUBECONFIG to run')
def test_kubernetes_export(tmp_path):
    opts = {'kubernetes_kubeconfig': os.environ['MCP_TEST_KUBECONFIG'], 'kubernetes_namespace': os.environ.get('MCP_TEST_K8S_NAMESPACE', 'default')}
    eng = Engine(LocalTarget(str(tmp_path / 's')), opts)
    manifest = eng.create(['kubernetes'])
    assert 'Secret' not in manifest['components']['kubernetes']['object_counts']
    assert eng.verify()['ok']


def test_s3_writers_share_the_in_flight_budget(moto):
    """Two components uploading at once hold at most max_in_flight parts between them; an aborted upload gives back
    the permits of the parts it never sent, so the other one still completes (no deadlock)."""
    params = new_bucket(moto, max_in_flight=1)
    target = make_target(params)
    part = 5 * 1024 * 1024
    first = target.open_writer('set/a.zst')
    second = target.open_writer('set/b.zst')
    first.write(os.urandom(part) * 3)        # three parts: one in flight, the rest wait for the shared permit
    first.abort()
    second.write(b'x' * (part + 10))
    second.complete()
    got = s3_client(params).get_object(Bucket=params['s3_bucket'], Key='lab/backups/set/b.zst')['Body'].read()
    assert got == b'x' * (part + 10)
    assert target.in_flight.acquire(timeout=5)  # the permit is back
    target.in_flight.release()
    uploads = s3_client(params).list_multipart_uploads(Bucket=params['s3_bucket']).get('Uploads', [])
    assert [u['Key'] for u in uploads] == []     # the aborted one is gone too
