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
  s3_endpoint_url:
    description:
      - URL of the S3-compatible endpoint, for example V(https://minio.example.com:9000). Omit for AWS.
    type: str
  s3_bucket:
    description:
      - Bucket holding the backup sets. Required when O(target=s3).
    type: str
  s3_prefix:
    description:
      - Key prefix (one per environment), for example V(production/backups). Sets are stored as C(<prefix>/<set_id>/).
    type: str
    default: ''
  s3_access_key:
    description:
      - Access key id. When omitted the boto3 credential chain (environment, instance profile, ...) is used.
    type: str
  s3_secret_key:
    description:
      - Secret access key. Never logged.
    type: str
  s3_region:
    description:
      - Region name for request signing.
    type: str
    default: us-east-1
  s3_server_side_encryption:
    description:
      - Server-side encryption requested for every object. V(none) disables it (for endpoints that reject the header).
    type: str
    choices: [AES256, 'aws:kms', none]
    default: AES256
  s3_retries:
    description:
      - Attempts per S3 request (botocore C(standard) retry mode, exponential backoff with jitter).
    type: int
    default: 5
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

    # PostgreSQL connection
    POSTGRES = r'''
options:
  postgres_dsn:
    description:
      - libpq connection string or URI of the database to back up or restore, for example the platform's C(DATABASE_URL).
      - Explicit O(postgres_host), O(postgres_port), O(postgres_user), O(postgres_password) and O(postgres_dbname) override its parts.
      - The password is passed to C(pg_dump)/C(pg_restore) in their environment only, never on a command line. Never logged.
    type: str
  postgres_host:
    description: Database host (or socket directory).
    type: str
  postgres_port:
    description: Database port.
    type: int
  postgres_user:
    description: Database user.
    type: str
  postgres_password:
    description: Database password. Never logged.
    type: str
  postgres_dbname:
    description: Database name.
    type: str
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
