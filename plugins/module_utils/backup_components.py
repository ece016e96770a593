# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Component producers (backup side) and consumers (restore side).

Each producer exposes ``start()``, ``chunks(cancel)`` (the raw stream), ``finish()``
(returns extra manifest metadata, raises on failure) and ``kill()``.

postgres
    ``pg_dump -Fc -Z0 --snapshot=<exported>`` (custom format, restorable with
    ``pg_restore --jobs N``; compression is ours, zstd). A helper connection opens a
    REPEATABLE READ transaction, exports its snapshot for pg_dump and counts every
    table's rows in that same snapshot, so the manifest row counts are exactly the
    dump's. The password never appears on a command line: it goes into
    ``PGPASSWORD`` of the subprocess environment only.
mongodb
    ``mongodump --archive`` with the URI in a 0600 temporary ``--config`` file.
kubernetes
    namespace resources as JSON lines via the kubernetes Python client; Secrets
    only with ``include_secrets``.
config / volumes
    GNU tar streams (``--xattrs --acls --numeric-owner``, owners, modes, links),
    always with ``--listed-incremental``.

Incremental design (config / volumes): GNU tar ``--listed-incremental``. Every
tar component, full or incremental, is written with a snapshot file (``.snar``,
directory metadata only, small) that is stored compressed next to the archive
as ``<component>.snar.zst``. An incremental set downloads its parent's snapshot,
lets tar dump only what changed since then (new/changed files plus the directory
listings that record deletions), and stores the updated snapshot. Restore extracts
the full set and then each incremental in order with
``--listed-incremental=/dev/null``, which also removes files deleted in between,
so the result is exactly the tree at the time of the chosen set. PostgreSQL is
always a full dump, even inside an incremental set.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading

from ansible_collections.mcp.platform.plugins.module_utils import postgres
from ansible_collections.mcp.platform.plugins.module_utils.backup_stream import ProcessSink, ProcessSource, ProducerError
from ansible_collections.mcp.platform.plugins.module_utils.node_requirements import missing_library_msg
from ansible_collections.mcp.platform.plugins.module_utils.secrets import mask_text

try:
    import psycopg2
    from psycopg2 import sql as pgsql
    HAS_PSYCOPG2 = True
    PSYCOPG2_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    HAS_PSYCOPG2 = False
    PSYCOPG2_IMPORT_ERROR = exc

TAR_COMMON = ['--xattrs', '--xattrs-include=*', '--acls', '--numeric-owner']


class ComponentError(Exception):
    pass


def find_binary(name, bin_dir=None, option=None):
    """The tool from ``bin_dir`` when one is given (never another version from PATH), else from PATH."""
    if bin_dir:
        candidate = os.path.join(bin_dir, name)
        if os.access(candidate, os.X_OK) and os.path.isfile(candidate):
            return candidate
        raise ComponentError('%s not found in %s (%s)' % (name, bin_dir, option or 'bin_dir'))
    found = shutil.which(name)
    if not found:
        raise ComponentError('%s not found in PATH%s' % (name, (' (set %s)' % option) if option else ''))
    return found


# ---------------------------------------------------------------- postgres

def pg_params(options):
    """Connection parameters: explicit host/port/user/password/dbname over ``postgres_dsn`` over PG* environment."""
    if not HAS_PSYCOPG2:
        raise ComponentError(missing_library_msg('psycopg2', reason='for the postgres component'))
    try:
        params = postgres.resolve(options, defaults={'dbname': 'postgres'})
    except postgres.PostgresError:
        raise ComponentError('postgres_dsn is not a valid libpq connection string or URI')
    if options.get('connect_timeout'):
        params['connect_timeout'] = str(options['connect_timeout'])
    return params


def pg_connect(params, dbname=None, timeout=10):
    """A connection (not autocommit) for the backup helpers; ``application_name`` mcp_backup unless set."""
    kwargs = dict(params)
    if dbname:
        kwargs['dbname'] = dbname
    timeout = kwargs.pop('connect_timeout', timeout)
    application_name = kwargs.pop('application_name', 'mcp_backup')
    try:
        return postgres.connect(postgres.make_dsn(kwargs), timeout, autocommit=False,
                                application_name=application_name)
    except postgres.DRIVER_ERRORS as exc:
        raise ComponentError('cannot connect to PostgreSQL %s:%s/%s: %s' % (
            kwargs.get('host', 'local socket'), kwargs.get('port', 5432), kwargs.get('dbname'),
            mask_text(str(exc).strip(), [kwargs.get('password')])))


def pg_command_env(params, dbname=None):
    """(conninfo without password, env with PGPASSWORD) for pg_dump / pg_restore."""
    kwargs = dict(params)
    if dbname:
        kwargs['dbname'] = dbname
    password = kwargs.pop('password', None)
    env = dict(os.environ)
    env.pop('PGPASSWORD', None)
    if password:
        env['PGPASSWORD'] = password
    kwargs.setdefault('connect_timeout', '10')
    return postgres.make_dsn(kwargs), env


def pg_row_counts(cur):
    cur.execute("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                "AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%' ORDER BY 1, 2")
    counts = {}
    for schema, table in cur.fetchall():
        cur.execute(pgsql.SQL('SELECT count(*) FROM {}.{}').format(pgsql.Identifier(schema), pgsql.Identifier(table)))
        counts['%s.%s' % (schema, table)] = cur.fetchone()[0]
    return counts


class PostgresProducer:
    name = 'postgres'

    def __init__(self, options):
        self.params = pg_params(options)
        self.pg_dump = find_binary('pg_dump', options.get('pg_bin_dir'), 'pg_bin_dir')
        self.conn = None
        self.source = None
        self.meta = {}
        self._counter = None
        self._count_error = None

    def start(self):
        self.conn = pg_connect(self.params)
        self.conn.set_session(isolation_level='REPEATABLE READ', readonly=True)
        cur = self.conn.cursor()
        cur.execute("SELECT pg_export_snapshot(), current_setting('server_version'), current_setting('server_version_num'), current_database()")
        snapshot, version, version_num, dbname = cur.fetchone()
        self.meta = {'server_version': version, 'server_version_num': int(version_num), 'database': dbname}
        conninfo, env = pg_command_env(self.params)
        self.source = ProcessSource([self.pg_dump, '--format=custom', '--compress=0', '--snapshot=%s' % snapshot,
                                     '--dbname=%s' % conninfo], env=env, label='pg_dump').start()

        def count():
            try:
                self.meta['row_counts'] = pg_row_counts(cur)
            except psycopg2.Error as exc:
                self._count_error = str(exc).strip()
        self._counter = threading.Thread(target=count, daemon=True)
        self._counter.start()
        return self

    def chunks(self, cancel=None):
        return self.source.chunks(cancel)

    def finish(self):
        self._counter.join()
        self._close()
        if self._count_error:
            raise ComponentError('row counts failed: %s' % self._count_error)
        return self.meta

    def _close(self):
        if self.conn is not None:
            try:
                self.conn.rollback()
                self.conn.close()
            except psycopg2.Error:
                pass
            self.conn = None

    def kill(self):
        if self.source is not None:
            self.source.kill()
        if self._counter is not None:
            try:
                self.conn.cancel()
            except (psycopg2.Error, AttributeError):
                pass
            self._counter.join(timeout=10)
        self._close()


def pg_restore_argv(options, params, dbname, jobs=1, clean=True, create=False, no_owner=False, path=None):
    pg_restore = find_binary('pg_restore', options.get('pg_bin_dir'), 'pg_bin_dir')
    conninfo, env = pg_command_env(params, dbname=dbname)
    # a restore is what one does in a database maintenance window: do not inherit its read-only default
    env['PGOPTIONS'] = ('%s -c default_transaction_read_only=off' % env.get('PGOPTIONS', '')).strip()
    argv = [pg_restore, '--exit-on-error', '--dbname=%s' % conninfo]
    if clean:
        argv += ['--clean', '--if-exists']
    if create:
        argv.append('--create')
    if no_owner:
        argv += ['--no-owner', '--no-privileges']
    if jobs and jobs > 1 and path:
        argv.append('--jobs=%d' % jobs)
    if path:
        argv.append(path)
    return argv, env


_TOC_RELATION = re.compile(r'^\d+; \d+ \d+ (TABLE|VIEW|MATERIALIZED VIEW|SEQUENCE|FOREIGN TABLE) (\S+) (.+) \S+$')
_RELKINDS = {'r': 'TABLE', 'p': 'TABLE', 'v': 'VIEW', 'm': 'MATERIALIZED VIEW', 'S': 'SEQUENCE', 'f': 'FOREIGN TABLE'}


def dump_relations(options, path):
    """(schema, name) of every table, view and sequence an archive holds, from ``pg_restore --list``."""
    res = subprocess.run([find_binary('pg_restore', options.get('pg_bin_dir'), 'pg_bin_dir'), '--list', path],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if res.returncode != 0:
        raise ComponentError('pg_restore --list failed: %s' % res.stderr.decode('utf-8', 'replace').strip()[-500:])
    out = set()
    for line in res.stdout.decode('utf-8', 'replace').splitlines():
        m = _TOC_RELATION.match(line)
        if m:
            out.add((m.group(2), m.group(3)))
    return out


def drop_relations_not_in(params, dbname, keep):
    """Drop the relations of ``dbname`` an archive does not hold (CASCADE), so ``pg_restore --clean`` can drop and
    recreate the rest: a table created after the backup with a foreign key to a backed-up one would otherwise make
    the restore fail, and would survive it. Extension members and system schemas are left alone."""
    conn = pg_connect(params, dbname=dbname)
    dropped = []
    try:
        with conn.cursor() as cur:
            cur.execute("SET default_transaction_read_only = off")
            cur.execute("SET lock_timeout = '30s'")
            cur.execute(
                "SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND NOT c.relispartition "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' "
                "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid "
                "AND d.deptype IN ('e', 'a', 'i'))")
            for schema, name, kind in cur.fetchall():
                if (schema, name) in keep:
                    continue
                cur.execute(pgsql.SQL('DROP {} IF EXISTS {}.{} CASCADE').format(
                    pgsql.SQL(_RELKINDS[kind]), pgsql.Identifier(schema), pgsql.Identifier(name)))
                dropped.append('%s.%s' % (schema, name))
        conn.commit()
    except psycopg2.Error as exc:
        conn.rollback()
        raise ComponentError('cannot drop the relations created after the backup: %s' % str(exc).strip())
    finally:
        conn.close()
    return dropped


# ---------------------------------------------------------------- mongodb

class MongoProducer:
    name = 'mongodb'

    def __init__(self, options):
        if not options.get('mongodb_uri'):
            raise ComponentError('mongodb_uri is required for the mongodb component')
        self.mongodump = find_binary('mongodump', options.get('mongodb_bin_dir'), 'mongodb_bin_dir')
        self.uri = options['mongodb_uri']
        self.tmpdir = None
        self.source = None

    def start(self):
        self.tmpdir = tempfile.mkdtemp(prefix='mcp-mongo-')
        cfg = os.path.join(self.tmpdir, 'mongodump.yml')
        fd = os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as fh:
            fh.write('uri: %s\n' % json.dumps(self.uri))
        self.source = ProcessSource([self.mongodump, '--config=%s' % cfg, '--archive', '--quiet'], label='mongodump').start()
        return self

    def chunks(self, cancel=None):
        return self.source.chunks(cancel)

    def finish(self):
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        return {}

    def kill(self):
        if self.source is not None:
            self.source.kill()
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


# ---------------------------------------------------------------- kubernetes

K8S_KINDS = (
    ('CoreV1Api', 'list_namespaced_config_map', 'v1', 'ConfigMap'),
    ('CoreV1Api', 'list_namespaced_service', 'v1', 'Service'),
    ('CoreV1Api', 'list_namespaced_service_account', 'v1', 'ServiceAccount'),
    ('CoreV1Api', 'list_namespaced_persistent_volume_claim', 'v1', 'PersistentVolumeClaim'),
    ('AppsV1Api', 'list_namespaced_deployment', 'apps/v1', 'Deployment'),
    ('AppsV1Api', 'list_namespaced_stateful_set', 'apps/v1', 'StatefulSet'),
    ('AppsV1Api', 'list_namespaced_daemon_set', 'apps/v1', 'DaemonSet'),
    ('NetworkingV1Api', 'list_namespaced_ingress', 'networking.k8s.io/v1', 'Ingress'),
    ('BatchV1Api', 'list_namespaced_cron_job', 'batch/v1', 'CronJob'),
)


class KubernetesProducer:
    """Namespace resources as JSON lines (one object per line, status and managedFields stripped)."""

    name = 'kubernetes'

    def __init__(self, options):
        try:
            from kubernetes import client, config  # pylint: disable=import-outside-toplevel
        except ImportError:
            raise ComponentError(missing_library_msg('kubernetes', reason='for the kubernetes component'))
        self.client = client
        self.config = config
        self.namespace = options.get('kubernetes_namespace') or 'mcp-platform'
        self.kubeconfig = options.get('kubernetes_kubeconfig')
        self.context = options.get('kubernetes_context')
        self.include_secrets = bool(options.get('include_secrets'))
        self.counts = {}

    def start(self):
        try:
            if self.kubeconfig or self.context or not os.environ.get('KUBERNETES_SERVICE_HOST'):
                self.api = self.config.new_client_from_config(config_file=self.kubeconfig, context=self.context)
            else:
                self.config.load_incluster_config()
                self.api = self.client.ApiClient()
        except Exception as exc:  # pylint: disable=broad-except
            raise ComponentError('cannot load Kubernetes configuration: %s' % exc)
        return self

    def chunks(self, cancel=None):
        kinds = list(K8S_KINDS)
        if self.include_secrets:
            kinds.append(('CoreV1Api', 'list_namespaced_secret', 'v1', 'Secret'))
        for api_name, method, api_version, kind in kinds:
            api = getattr(self.client, api_name)(self.api)
            try:
                items = getattr(api, method)(self.namespace).items
            except Exception as exc:  # pylint: disable=broad-except
                raise ComponentError('listing %s in namespace %s failed: %s' % (kind, self.namespace, getattr(exc, 'reason', exc)))
            self.counts[kind] = len(items)
            for item in items:
                doc = self.api.sanitize_for_serialization(item)
                doc['apiVersion'] = api_version
                doc['kind'] = kind
                doc.pop('status', None)
                doc.get('metadata', {}).pop('managedFields', None)
                yield (json.dumps(doc, sort_keys=True) + '\n').encode('utf-8')

    def finish(self):
        return {'namespace': self.namespace, 'object_counts': self.counts, 'include_secrets': self.include_secrets}

    def kill(self):
        pass


# ---------------------------------------------------------------- config / volumes (GNU tar)

def _rel_paths(paths, option):
    if not paths:
        raise ComponentError('%s is empty' % option)
    rels = []
    for path in paths:
        full = os.path.abspath(path)
        if not os.path.lexists(full):
            raise ComponentError('%s: %s does not exist' % (option, full))
        rels.append(os.path.relpath(full, '/'))
    return rels


class TarProducer:
    """GNU tar with --listed-incremental; see the module docstring for the incremental design."""

    def __init__(self, name, options, parent_snapshot=None):
        self.name = name
        self.option = 'config_paths' if name == 'config' else 'volume_paths'
        self.paths = _rel_paths(options.get(self.option), self.option)
        self.tar = find_binary('tar', None)
        self.workdir = tempfile.mkdtemp(prefix='mcp-tar-', dir=options.get('work_dir') or None)
        self.snar = os.path.join(self.workdir, '%s.snar' % name)
        self.incremental = parent_snapshot is not None
        if parent_snapshot is not None:
            fd = os.open(self.snar, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, 'wb') as fh:
                fh.write(parent_snapshot)
        self.source = None
        self.snapshot = None

    def start(self):
        argv = [self.tar, '--create', '--file=-', '--directory=/', '--sparse', '--no-check-device',
                '--listed-incremental=%s' % self.snar] + TAR_COMMON + ['--'] + self.paths
        # exit 1: "some files differ" (changed while being read) - kept, reported as a warning
        self.source = ProcessSource(argv, ok_codes=(0, 1), label='tar (%s)' % self.name).start()
        return self

    def chunks(self, cancel=None):
        return self.source.chunks(cancel)

    def finish(self):
        meta = {'paths': ['/' + p for p in self.paths], 'incremental': self.incremental}
        if self.source.returncode == 1:
            meta['warnings'] = ['tar: %s' % self.source.stderr_text(500)]
        with open(self.snar, 'rb') as fh:
            self.snapshot = fh.read()
        shutil.rmtree(self.workdir, ignore_errors=True)
        return meta

    def kill(self):
        if self.source is not None:
            self.source.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def tar_extract_sink(restore_root):
    if not os.path.isdir(restore_root):
        os.makedirs(restore_root, mode=0o755)
    argv = [find_binary('tar', None), '--extract', '--file=-', '--directory=%s' % restore_root, '--listed-incremental=/dev/null',
            '--same-owner', '--preserve-permissions'] + TAR_COMMON
    return ProcessSink(argv, label='tar --extract')


def make_producer(name, options, parent_snapshot=None):
    if name == 'postgres':
        return PostgresProducer(options)
    if name == 'mongodb':
        return MongoProducer(options)
    if name == 'kubernetes':
        return KubernetesProducer(options)
    if name in ('config', 'volumes'):
        return TarProducer(name, options, parent_snapshot=parent_snapshot)
    raise ComponentError('unknown component %r' % name)


def file_fingerprint(path):
    """Helper for tests and drills: (mode, uid, gid, content or link target)."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        body = os.readlink(path)
    elif stat.S_ISREG(st.st_mode):
        with open(path, 'rb') as fh:
            body = fh.read()
    else:
        body = None
    return stat.S_IMODE(st.st_mode), stat.S_IFMT(st.st_mode), st.st_uid, st.st_gid, body


__all__ = ['ComponentError', 'make_producer', 'pg_params', 'pg_connect', 'pg_row_counts', 'pg_restore_argv', 'tar_extract_sink',
           'ProducerError', 'file_fingerprint']
