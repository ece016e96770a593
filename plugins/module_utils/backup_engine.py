# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup set orchestration: create, list, verify (+ restore drill), prune, info. Restoring is backup_restore.py,
the files a run leaves (last_backup.json, metrics) backup_records.py.

A set exists only when its ``manifest.json`` exists; the manifest is written
after every component object has been completed, so a crashed or failed run
leaves at most unfinished multipart uploads and orphan objects, which
``prune`` removes once they are older than ``abort_incomplete_after``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.mcp.platform.plugins.module_utils import backup_manifest as bm
from ansible_collections.mcp.platform.plugins.module_utils import backup_retention
from ansible_collections.mcp.platform.plugins.module_utils.backup_components import (
    ComponentError,
    make_producer,
    pg_connect,
    pg_params,
    pg_restore_argv,
    pg_row_counts,
)
from ansible_collections.mcp.platform.plugins.module_utils.backup_manifest import BackupError  # noqa: F401  (be.BackupError)
from ansible_collections.mcp.platform.plugins.module_utils.backup_restore import TAR_COMPONENTS, RestoreMixin
from ansible_collections.mcp.platform.plugins.module_utils.backup_storage import StorageError
from ansible_collections.mcp.platform.plugins.module_utils.backup_stream import (
    Cancelled,
    ProcessSink,
    ProducerError,
    compress_stream,
    hash_stream,
)

try:
    import zstandard
except ImportError:  # pragma: no cover - checked by backup_stream users
    zstandard = None


def _zstd_bytes(data, level=3):
    return zstandard.ZstdCompressor(level=level, write_checksum=True).compress(data)


def _unzstd_bytes(data):
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


class Engine(RestoreMixin):
    def __init__(self, target, options=None, log=None):
        self.target = target
        self.options = options or {}
        self.level = int(self.options.get('compression_level') or 1)
        self.threads = int(self.options.get('compression_threads') or 0)
        self.log = log or (lambda msg: None)

    # ------------------------------------------------------------ listing

    def scan(self):
        """Return (sets, orphans): sets with a manifest (newest first); orphan set dirs without one."""
        objects = self.target.list_objects()
        groups = {}
        for obj in objects:
            set_id = obj['key'].split('/', 1)[0]
            if bm.is_set_id(set_id) and '/' in obj['key']:
                groups.setdefault(set_id, []).append(obj)
        sets, orphans = [], []
        for set_id, objs in groups.items():
            keys = set(o['key'] for o in objs)
            if bm.manifest_key(set_id) not in keys:
                orphans.append({'id': set_id, 'objects': objs, 'newest_mtime': max(o['mtime'] for o in objs)})
                continue
            try:
                manifest = bm.load_manifest(self.target.get_bytes(bm.manifest_key(set_id)), set_id)
            except bm.ManifestError as exc:
                orphans.append({'id': set_id, 'objects': objs, 'newest_mtime': max(o['mtime'] for o in objs), 'error': str(exc)})
                continue
            verification = None
            if bm.verification_key(set_id) in keys:
                verification = bm.load_json(self.target.get_bytes(bm.verification_key(set_id)))
            sets.append({'id': set_id, 'manifest': manifest, 'verification': verification, 'objects': objs})
        sets.sort(key=lambda s: (s['manifest']['started_at'], s['id']), reverse=True)
        return sets, orphans

    @staticmethod
    def summarize(entry, now=None):
        now = time.time() if now is None else now
        man = entry['manifest']
        ver = entry.get('verification') or {}
        state = 'never'
        if ver:
            state = 'ok' if ver.get('ok') else 'failed'
        return {
            'id': entry['id'],
            'schedule_class': man['schedule_class'],
            'type': man['type'],
            'parent': man.get('parent'),
            'started_at': bm.iso(man['started_at']),
            'finished_at': bm.iso(man['finished_at']),
            'finished_ts': man['finished_at'],
            'duration_seconds': round(man['finished_at'] - man['started_at'], 3),
            'age_seconds': int(now - man['finished_at']),
            'size_bytes': sum(c['compressed_size'] for c in man['components'].values()),
            'raw_size_bytes': sum(c['size'] for c in man['components'].values()),
            'components': sorted(man['components']),
            'platform_version': man.get('platform_version'),
            'label': man.get('label'),
            'host': man.get('host'),
            'verification': state,
            'verified_at': bm.iso(ver.get('time')) if ver else None,
            'drill_ok': bool(ver.get('ok') and (ver.get('drill') or {}).get('ok')) if ver else False,
            'verification_ts': ver.get('time') if ver else None,
        }

    def _find(self, sets, set_id, good_only=False, label=None):
        if set_id:
            for entry in sets:
                if entry['id'] == set_id:
                    return entry
            raise BackupError('backup set %s not found in %s (a set without manifest does not exist)' % (set_id, self.target.describe()))
        for entry in sets:
            if label is not None and entry['manifest'].get('label') != label:
                continue
            if not good_only or (entry.get('verification') or {}).get('ok', True):
                return entry
        raise BackupError('no %sbackup set%s found in %s' % (
            'good ' if good_only else '', ' labelled %s' % label if label is not None else '', self.target.describe()))

    # ------------------------------------------------------------ create

    def plan_create(self, components, backup_type='full'):
        sets, dummy = self.scan()
        parent = None
        if backup_type == 'incremental':
            parent = self._incremental_parent(sets, components)
        return {'components': components, 'type': 'incremental' if parent else 'full',
                'parent': parent['id'] if parent else None}

    @staticmethod
    def _incremental_parent(sets, components):
        wanted = [c for c in components if c in TAR_COMPONENTS]
        for entry in sets:
            comps = entry['manifest']['components']
            if all(c in comps and comps[c].get('snapshot') for c in wanted):
                if (entry.get('verification') or {}).get('ok', True):
                    return entry
        return None

    def create(self, components, backup_type='full', schedule_class='manual', platform_env=None, label=None):
        started = time.time()
        self.target.check()
        sets, dummy = self.scan()
        parent = None
        warnings = []
        if backup_type == 'incremental':
            parent = self._incremental_parent(sets, components)
            if parent is None:
                warnings.append('no earlier complete set with snapshots for %s: taking a full backup' % ', '.join(components))
        set_id = bm.new_set_id(started)
        cancel = threading.Event()
        results, errors, completed = {}, {}, []
        lock = threading.Lock()

        def run(name):
            snapshot = None
            if parent is not None and name in TAR_COMPONENTS:
                snapshot = _unzstd_bytes(self.target.get_bytes(parent['manifest']['components'][name]['snapshot']['key']))
            key = bm.object_key(set_id, name)
            producer = writer = None
            try:
                producer = make_producer(name, self.options, parent_snapshot=snapshot)
                t0 = time.time()
                writer = self.target.open_writer(key)
                producer.start()
                stats = compress_stream(producer.chunks(cancel), writer, level=self.level, threads=self.threads, cancel=cancel)
                meta = producer.finish()
                writer.complete()
                with lock:
                    completed.append(key)
                entry = {'key': key, 'format': bm.FORMATS[name]}
                entry.update(stats)
                entry['seconds'] = round(time.time() - t0, 3)
                entry.update(meta or {})
                if getattr(producer, 'snapshot', None) is not None:
                    skey = bm.snapshot_key(set_id, name)
                    blob = _zstd_bytes(producer.snapshot)
                    self.target.put_bytes(skey, blob)
                    with lock:
                        completed.append(skey)
                    entry['snapshot'] = {'key': skey, 'sha256': hash_stream([blob])[0], 'compressed_size': len(blob)}
                    if parent is not None:
                        entry['parent'] = parent['id']
                results[name] = entry
            except Cancelled:
                errors[name] = 'cancelled because another component failed'
            except (ComponentError, ProducerError, StorageError, OSError) as exc:
                errors[name] = str(exc)
                cancel.set()
            except Exception as exc:  # pylint: disable=broad-except
                errors[name] = '%s: %s' % (type(exc).__name__, exc)
                cancel.set()
            finally:
                if name in errors:
                    if producer is not None:
                        producer.kill()
                    if writer is not None:
                        writer.abort()

        with ThreadPoolExecutor(max_workers=len(components)) as pool:
            list(pool.map(run, components))

        if errors:
            try:
                self.target.delete(completed)
            except StorageError:
                pass  # orphans without manifest; prune removes them
            failed = [c for c in components if c in errors and not errors[c].startswith('cancelled')]
            msg = 'backup set %s failed: %s' % (set_id, '; '.join('%s: %s' % (c, errors[c]) for c in failed or sorted(errors)))
            raise BackupError(msg, {'set_id': set_id, 'status': 'failed', 'failed_components': failed or sorted(errors),
                                    'errors': errors, 'started_at': bm.iso(started), 'finished_at': bm.iso(time.time())})

        finished = time.time()
        manifest = {
            'schema': bm.SCHEMA,
            'set_id': set_id,
            'type': 'incremental' if parent is not None else 'full',
            'parent': parent['id'] if parent is not None else None,
            'schedule_class': schedule_class,
            'label': label,
            'started_at': started,
            'finished_at': finished,
            'host': socket.getfqdn(),
            'platform_version': bm.read_platform_version(platform_env),
            'postgres_server_version': results.get('postgres', {}).get('server_version'),
            'row_counts': results.get('postgres', {}).get('row_counts'),
            'components': results,
            'compression': {'algorithm': 'zstd', 'level': self.level},
            'warnings': warnings,
        }
        self.target.put_bytes(bm.manifest_key(set_id), bm.dump(manifest))
        return manifest

    # ------------------------------------------------------------ verify

    def _check_object(self, key, sha256, size):
        try:
            digest, got = hash_stream(self.target.iter_object(key))
        except StorageError as exc:
            return str(exc)
        if got != size:
            return 'size mismatch for %s: stored %d bytes, manifest says %d' % (key, got, size)
        if digest != sha256:
            return 'SHA-256 mismatch for %s: stored %s, manifest says %s' % (key, digest, sha256)
        return None

    def check_components(self, manifest, components=None):
        out = {}
        for name, comp in sorted(manifest['components'].items()):
            if components and name not in components:
                continue
            err = self._check_object(comp['key'], comp['sha256'], comp['compressed_size'])
            if not err and comp.get('snapshot'):
                snap = comp['snapshot']
                err = self._check_object(snap['key'], snap['sha256'], snap['compressed_size'])
            out[name] = {'ok': err is None, 'error': err}
        return out

    def verify(self, set_id=None, drill=False, record=True, label=None):
        sets, dummy = self.scan()
        entry = self._find(sets, set_id, label=label)
        manifest = entry['manifest']
        t0 = time.time()
        comps = self.check_components(manifest)
        failed = [n for n, r in comps.items() if not r['ok']]
        result = {'set_id': entry['id'], 'time': t0, 'at': bm.iso(t0), 'components': comps, 'failed_components': failed}
        if drill:
            if 'postgres' not in manifest['components']:
                result['drill'] = {'ok': False, 'error': 'set has no postgres component'}
            elif 'postgres' in failed:
                result['drill'] = {'ok': False, 'error': 'skipped: postgres object failed its checksum'}
            else:
                result['drill'] = self.drill(manifest)
        result['ok'] = not failed and (not drill or result['drill']['ok'])
        result['seconds'] = round(time.time() - t0, 3)
        if record:
            self.target.put_bytes(bm.verification_key(entry['id']), bm.dump(result))
        return result

    def drill(self, manifest):
        """Restore postgres into a scratch database, compare row counts with the manifest, drop it."""
        params = pg_params(self.options)
        scratch = 'mcp_drill_%s' % re.sub('[^0-9a-z]', '_', manifest['set_id'].lower())
        maint = self.options.get('postgres_maintenance_db') or 'postgres'
        out = {'database': scratch}
        conn = None
        try:
            conn = pg_connect(params, dbname=maint)
            conn.autocommit = True
            cur = conn.cursor()
            cur.execute('DROP DATABASE IF EXISTS "%s"' % scratch)
            cur.execute('CREATE DATABASE "%s"' % scratch)
            argv, env = pg_restore_argv(self.options, params, scratch, clean=False, no_owner=True)
            self._pipe_object(manifest['components']['postgres'], ProcessSink(argv, env=env, label='pg_restore (drill)'))
            sconn = pg_connect(params, dbname=scratch)
            try:
                counts = pg_row_counts(sconn.cursor())
            finally:
                sconn.close()
            expected = manifest.get('row_counts') or {}
            diffs = dict((t, {'expected': expected.get(t), 'restored': counts.get(t)})
                         for t in sorted(set(expected) | set(counts)) if expected.get(t) != counts.get(t))
            out.update({'ok': not diffs, 'tables': len(counts), 'rows': sum(counts.values()), 'mismatches': diffs})
            if diffs:
                out['error'] = 'row counts differ for %d table(s): %s' % (len(diffs), ', '.join(sorted(diffs)[:10]))
        except (ComponentError, ProducerError, StorageError, BackupError) as exc:
            out.update({'ok': False, 'error': str(exc)})
        finally:
            if conn is not None:
                try:
                    conn.cursor().execute('DROP DATABASE IF EXISTS "%s"' % scratch)
                except Exception as exc:  # pylint: disable=broad-except
                    out.setdefault('warnings', []).append('could not drop %s: %s' % (scratch, exc))
                conn.close()
        return out

    # ------------------------------------------------------------ prune

    def prune(self, policy, abort_incomplete_after=86400, check_mode=False, now=None):
        now = time.time() if now is None else now
        policy = backup_retention.validate_policy(policy)
        sets, orphans = self.scan()
        planner_input = [{'id': s['id'], 'time': s['manifest']['started_at'], 'schedule_class': s['manifest']['schedule_class'],
                          'type': s['manifest']['type'], 'parent': s['manifest'].get('parent'),
                          'verified': (s.get('verification') or {}).get('ok')} for s in sets]
        plan = backup_retention.plan(planner_input, policy, now)
        by_id = dict((s['id'], s) for s in sets)
        incomplete = [u for u in self.target.list_incomplete() if now - self._upload_started(u) >= abort_incomplete_after]
        old_orphans = [o for o in orphans if now - o['newest_mtime'] >= abort_incomplete_after]
        result = {
            'policy_days': policy,
            'keep': plan['keep'],
            'delete': plan['delete'],
            'aborted_uploads': [{'key': u['key'], 'initiated': bm.iso(u['initiated'])} for u in incomplete],
            'orphans_removed': [{'id': o['id'], 'objects': len(o['objects'])} for o in old_orphans],
        }
        result['changed'] = bool(plan['delete'] or incomplete or old_orphans)
        if check_mode:
            return result
        for item in plan['delete']:
            keys = [o['key'] for o in by_id[item['id']]['objects']]
            mkey = bm.manifest_key(item['id'])
            self.target.delete([mkey])  # the set stops existing first
            self.target.delete([k for k in keys if k != mkey])
        for upload in incomplete:
            self.target.abort_incomplete(upload)
        for orphan in old_orphans:
            self.target.delete([o['key'] for o in orphan['objects']])
        return result

    @staticmethod
    def _upload_started(upload):
        """Start of an unfinished upload: the later of its reported start and its set id's timestamp.

        Some S3-compatible servers report a bogus ``Initiated``; the set id carries the real start.
        """
        started = upload['initiated']
        set_id = upload['key'].split('/', 1)[0]
        if bm.is_set_id(set_id):
            started = max(started, bm.set_time(set_id))
        return started

    # ------------------------------------------------------------ info / metrics

    def info(self, now=None):
        now = time.time() if now is None else now
        sets, orphans = self.scan()
        summaries = [self.summarize(s, now) for s in sets]
        good = [s for s in summaries if s['verification'] != 'failed']
        newest_good = {}
        for summary in good:
            newest_good.setdefault(summary['schedule_class'], summary['id'])
        last_good = good[0] if good else None
        drills = [s for s in summaries if s['drill_ok']]
        last_drill = max(drills, key=lambda s: s['verification_ts']) if drills else None
        return {
            'target': self.target.describe(),
            'sets': summaries,
            'count': len(summaries),
            'incomplete_sets': [o['id'] for o in orphans],
            'newest_good': newest_good,
            'last_good': last_good,
            'last_good_age_seconds': last_good['age_seconds'] if last_good else None,
            'last_verified_restore': last_drill['verified_at'] if last_drill else None,
            'last_verified_restore_ts': last_drill['verification_ts'] if last_drill else None,
        }
