# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # Backup target: S3-compatible bucket or local directory
    DOCUMENTATION = r'''
options:
  target:
    description:
      - Where backup sets live. V(s3) is any S3-compatible endpoint (AWS, MinIO, Ceph); V(local) is a directory.
    type: str
    choices: [s3, local]
    default: s3
  local_path:
    description:
      - Directory holding the backup sets when O(target=local). Objects are written with mode C(0600).
    type: path
  part_size_mb:
    description:
      - Multipart upload part size in MiB (minimum 5). Peak upload memory is about O(part_size_mb) times
        (O(max_in_flight) + 2 per component uploading at once), whatever the size of the data.
    type: int
    default: 16
  max_in_flight:
    description:
      - Parts uploaded concurrently, shared by all the components of a backup set (so memory does not grow with
        the number of components).
    type: int
    default: 4
'''

    # PostgreSQL tools of the backup (the connection itself is the mcp.platform.postgres fragment)
    POSTGRES_TOOLS = r'''
options:
  postgres_maintenance_db:
    description: Database to connect to for C(CREATE DATABASE)/C(DROP DATABASE) (restore drills, O(postgres_restore_create)).
    type: str
    default: postgres
  pg_bin_dir:
    description:
      - Directory holding C(pg_dump) and C(pg_restore) (for example V(/usr/lib/postgresql/15/bin)); default is the C(PATH).
      - When set, the tools must be in it; the C(PATH) is not searched (another major version could be found there).
      - C(pg_dump) must not be older than the server.
    type: path
'''
