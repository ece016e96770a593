# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restoring a backup set (Engine's restore half): the chain of incrementals, every object verified before anything is
touched, then each component streamed into its tool (pg_restore, mongorestore, tar), checking SHA-256 on the way."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import tempfile
import time

from ansible_collections.mcp.platform.plugins.module_utils.backup_components import (
    drop_relations_not_in,
    dump_relations,
    pg_params,
    pg_restore_argv,
    tar_extract_sink,
)
from ansible_collections.mcp.platform.plugins.module_utils.backup_manifest import BackupError
from ansible_collections.mcp.platform.plugins.module_utils.backup_stream import ProcessSink, decompress_stream

RESTORABLE = ('postgres', 'mongodb', 'config', 'volumes')
TAR_COMPONENTS = ('config', 'volumes')


class RestoreMixin(object):
    """Needs ``self.target`` (storage), ``self.options``, ``self.scan``, ``self._find`` and ``self.check_components``."""

    def _pipe_object(self, comp, sink):
        """Stream a stored object, decompressed, into a ProcessSink; checks the SHA-256 on the way."""
        try:
            digest, size, dummy = decompress_stream(self.target.iter_object(comp['key']), sink.write)
        except BaseException:
            sink.kill()
            raise
        output = sink.close()
        if digest != comp['sha256'] or size != comp['compressed_size']:
            raise BackupError('SHA-256 mismatch while restoring %s' % comp['key'])
        return output

    # ------------------------------------------------------------ restore

    def chain(self, sets, entry, component):
        """Sets to apply for a tar component: the full one first, then each incremental."""
        by_id = dict((s['id'], s) for s in sets)
        out = [entry]
        cur = entry
        while cur['manifest']['components'].get(component, {}).get('incremental'):
            parent_id = cur['manifest']['components'][component].get('parent')
            if parent_id not in by_id:
                raise BackupError('%s of set %s needs parent set %s, which does not exist' % (component, entry['id'], parent_id))
            cur = by_id[parent_id]
            out.append(cur)
        return list(reversed(out))

    def restore(self, set_id=None, components=None, restore_root=None, jobs=1, clean=True, create=False, check_mode=False, label=None):
        sets, dummy = self.scan()
        entry = self._find(sets, set_id, good_only=True, label=label)
        manifest = entry['manifest']
        available = [c for c in manifest['components'] if c in RESTORABLE]
        components = components or available
        missing = [c for c in components if c not in manifest['components']]
        if missing:
            raise BackupError('set %s has no component(s) %s (it has %s)' % (entry['id'], ', '.join(missing), ', '.join(sorted(manifest['components']))))
        if 'kubernetes' in components:
            raise BackupError('restoring the kubernetes component is not supported by this module; apply the exported '
                              'objects with kubernetes.core.k8s')
        plan = {}
        for name in components:
            chain = self.chain(sets, entry, name) if name in TAR_COMPONENTS else [entry]
            plan[name] = [s['id'] for s in chain]
        # verify first: every object the restore will read
        failures = {}
        for name, ids in plan.items():
            for sid in ids:
                man = [s for s in sets if s['id'] == sid][0]['manifest']
                res = self.check_components(man, [name])[name]
                if not res['ok']:
                    failures['%s@%s' % (name, sid)] = res['error']
        if failures:
            raise BackupError('refusing to restore set %s: verification failed for %s' % (entry['id'], '; '.join(
                '%s: %s' % item for item in sorted(failures.items()))), {'set_id': entry['id'], 'verification_failures': failures})
        result = {'set_id': entry['id'], 'plan': plan, 'components': {}}
        if check_mode:
            return result
        by_id = dict((s['id'], s) for s in sets)
        for name in components:
            t0 = time.time()
            extra = {}
            if name == 'postgres':
                extra['dropped'] = self._restore_postgres(manifest['components']['postgres'], jobs, clean, create)
            elif name == 'mongodb':
                self._restore_mongo(manifest['components']['mongodb'])
            else:
                root = restore_root or '/'
                for sid in plan[name]:
                    self._pipe_object(by_id[sid]['manifest']['components'][name], tar_extract_sink(root))
            result['components'][name] = dict(extra, ok=True, seconds=round(time.time() - t0, 3), sets=plan[name])
        return result

    def _restore_postgres(self, comp, jobs, clean, create):
        params = pg_params(self.options)
        dbname = params.get('dbname')
        target_db = (self.options.get('postgres_maintenance_db') or 'postgres') if create else dbname
        exact = clean and not create
        dropped = []
        if (jobs and jobs > 1) or exact:
            # pg_restore --jobs and --list need a seekable file: decompress into work_dir, remove afterwards
            fd, path = tempfile.mkstemp(prefix='mcp-restore-', suffix='.pgdump', dir=self.options.get('work_dir') or None)
            try:
                with os.fdopen(fd, 'wb') as fh:
                    digest, size, dummy = decompress_stream(self.target.iter_object(comp['key']), fh.write)
                if digest != comp['sha256'] or size != comp['compressed_size']:
                    raise BackupError('SHA-256 mismatch while restoring %s' % comp['key'])
                if exact:
                    # the database as it was: what was created after the backup goes (and cannot block --clean)
                    dropped = drop_relations_not_in(params, dbname, dump_relations(self.options, path))
                argv, env = pg_restore_argv(self.options, params, target_db, jobs=jobs, clean=clean, create=create, path=path)
                sink = ProcessSink(argv, env=env, label='pg_restore')
                sink.close()
            finally:
                os.unlink(path)
        else:
            argv, env = pg_restore_argv(self.options, params, target_db, clean=clean, create=create)
            self._pipe_object(comp, ProcessSink(argv, env=env, label='pg_restore'))
        return dropped

    def _restore_mongo(self, comp):
        from ansible_collections.mcp.platform.plugins.module_utils.backup_components import find_binary  # pylint: disable=import-outside-toplevel
        uri = self.options.get('mongodb_uri')
        if not uri:
            raise BackupError('mongodb_uri is required to restore the mongodb component')
        tmpdir = tempfile.mkdtemp(prefix='mcp-mongo-')
        cfg = os.path.join(tmpdir, 'mongorestore.yml')
        try:
            fd = os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, 'w') as fh:
                fh.write('uri: %s\n' % json.dumps(uri))
            argv = [find_binary('mongorestore', self.options.get('mongodb_bin_dir'), 'mongodb_bin_dir'), '--config=%s' % cfg, '--archive', '--drop']
            self._pipe_object(comp, ProcessSink(argv, label='mongorestore'))
        finally:
            os.unlink(cfg)
            os.rmdir(tmpdir)
