# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup set naming, object layout and the manifest document.

Layout under the target prefix::

    <set_id>/<component>.<ext>.zst        one object per component
    <set_id>/<component>.snar.zst         GNU tar listed-incremental snapshot (config/volumes)
    <set_id>/manifest.json                written last: its presence makes the set exist
    <set_id>/verification.json            last verification result (not part of the manifest)

``set_id`` is ``YYYYmmddTHHMMSSZ-<6 hex>`` (UTC start time plus a short random part),
so ids sort chronologically.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import calendar
import json
import os
import re
import time

from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError

SCHEMA = 1
MANIFEST = 'manifest.json'
VERIFICATION = 'verification.json'
COMPONENTS = ('postgres', 'mongodb', 'kubernetes', 'config', 'volumes')
SCHEDULE_CLASSES = ('daily', 'weekly', 'monthly', 'manual')
TYPES = ('full', 'incremental')
EXTENSIONS = {
    'postgres': 'pgdump',
    'mongodb': 'archive',
    'kubernetes': 'ndjson',
    'config': 'tar',
    'volumes': 'tar',
}
FORMATS = {
    'postgres': 'pg_dump-custom',
    'mongodb': 'mongodump-archive',
    'kubernetes': 'kubernetes-ndjson',
    'config': 'gnu-tar-listed-incremental',
    'volumes': 'gnu-tar-listed-incremental',
}
SET_ID_RE = re.compile(r'^(\d{8}T\d{6}Z)-([0-9a-f]{6})\Z')
# optional name of a set (manifest ``label``), for example ``pre-update-1.2.0-20250101T020000``
LABEL_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}\Z')


class ManifestError(PlatformError):
    pass


class BackupError(PlatformError):
    """An operation failed; ``details`` carries a JSON-able result for the module."""

    def __init__(self, msg, details=None):
        super(BackupError, self).__init__(msg)
        self.details = details or {}


def new_set_id(when=None):
    when = time.time() if when is None else when
    return '%s-%s' % (time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(when)), binascii.hexlify(os.urandom(3)).decode('ascii'))


def is_set_id(value):
    return bool(SET_ID_RE.match(value or ''))


def is_label(value):
    return bool(LABEL_RE.match(value or ''))


def set_time(set_id):
    match = SET_ID_RE.match(set_id)
    if not match:
        raise ManifestError('not a backup set id: %r' % set_id)
    return calendar.timegm(time.strptime(match.group(1), '%Y%m%dT%H%M%SZ'))


def object_key(set_id, component):
    return '%s/%s.%s.zst' % (set_id, component, EXTENSIONS[component])


def snapshot_key(set_id, component):
    return '%s/%s.snar.zst' % (set_id, component)


def manifest_key(set_id):
    return '%s/%s' % (set_id, MANIFEST)


def verification_key(set_id):
    return '%s/%s' % (set_id, VERIFICATION)


def iso(ts):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(ts)) if ts is not None else None


def dump(doc):
    return (json.dumps(doc, indent=2, sort_keys=True) + '\n').encode('utf-8')


def load_manifest(data, set_id=None):
    try:
        doc = json.loads(data.decode('utf-8') if isinstance(data, bytes) else data)
    except ValueError as exc:
        raise ManifestError('manifest of %s is not valid JSON: %s' % (set_id, exc))
    if not isinstance(doc, dict):
        raise ManifestError('manifest of %s is not an object' % set_id)
    for key in ('schema', 'set_id', 'type', 'schedule_class', 'components', 'started_at', 'finished_at'):
        if key not in doc:
            raise ManifestError('manifest of %s lacks %r' % (set_id, key))
    if set_id and doc['set_id'] != set_id:
        raise ManifestError('manifest under %s names set %s' % (set_id, doc['set_id']))
    if not isinstance(doc['components'], dict):
        raise ManifestError('manifest of %s: components must be a mapping' % set_id)
    for name, comp in doc['components'].items():
        for key in ('key', 'sha256', 'compressed_size', 'size', 'format'):
            if key not in comp:
                raise ManifestError('manifest of %s: component %s lacks %r' % (set_id, name, key))
    return doc


def load_json(data):
    if data is None:
        return None
    try:
        return json.loads(data.decode('utf-8'))
    except ValueError:
        return None


def read_platform_version(path):
    """``VERSION=`` from an env file such as /etc/mcp/platform.env (None when absent)."""
    if not path or not os.path.exists(path):
        return None
    with open(path, 'r') as fh:
        for line in fh:
            line = line.strip()
            if line.startswith('export '):
                line = line[7:].strip()
            if line.startswith('VERSION='):
                return line.split('=', 1)[1].strip().strip('"').strip("'")
    return None
