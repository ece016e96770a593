# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a backup run leaves for people and monitoring: last_backup.json and the Prometheus textfile, written atomically
(a reader never sees half a file)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import tempfile


def atomic_write(path, data, mode=0o644):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o755)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, 'wb') as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def metrics_text(info):
    """Prometheus textfile metrics; only complete, not-failed sets count as success."""
    label = '{target="%s"}' % info['target'].replace('\\', '\\\\').replace('"', '\\"')
    last = info.get('last_good')
    rows = [
        ('mcp_backup_last_success_timestamp_seconds', 'End time of the newest complete backup set that did not fail verification.',
         last['finished_ts'] if last else 0),
        ('mcp_backup_last_duration_seconds', 'Duration of that backup set.', last['duration_seconds'] if last else 0),
        ('mcp_backup_last_size_bytes', 'Stored (compressed) size of that backup set.', last['size_bytes'] if last else 0),
        ('mcp_backup_last_verified_restore_timestamp_seconds', 'Time of the newest successful restore drill.',
         info.get('last_verified_restore_ts') or 0),
        ('mcp_backup_sets', 'Number of complete backup sets.', info['count']),
    ]
    out = []
    for name, help_text, value in rows:
        out.append('# HELP %s %s' % (name, help_text))
        out.append('# TYPE %s gauge' % name)
        out.append('%s%s %s' % (name, label, repr(float(value))))
    return '\n'.join(out) + '\n'


def write_metrics(path, info):
    atomic_write(path, metrics_text(info).encode('utf-8'), mode=0o644)


def write_last_backup(state_dir, result):
    atomic_write(os.path.join(state_dir, 'last_backup.json'), (json.dumps(result, indent=2, sort_keys=True) + '\n').encode('utf-8'), 0o640)
