# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # The S3 connection (module_utils/s3.py): the same option names in every module that talks to a bucket.
    DOCUMENTATION = r'''
options:
  s3_endpoint_url:
    description:
      - URL of the S3-compatible endpoint, for example V(https://minio.example.com:9000). Omit for AWS.
      - When omitted, the environment variable E(AWS_ENDPOINT_URL_S3), then E(AWS_ENDPOINT_URL), is used.
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
      - Access key id.
      - When omitted, the environment variable E(AWS_ACCESS_KEY_ID) is used (what an AWX Amazon Web Services
        credential injects); without either, the boto3 credential chain (shared files, instance profile, ...).
    type: str
  s3_secret_key:
    description:
      - Secret access key. Never logged. When omitted, the environment variable E(AWS_SECRET_ACCESS_KEY) is used.
    type: str
  s3_session_token:
    description:
      - Session token of temporary credentials (STS, SSO). Never logged.
      - When omitted, the environment variable E(AWS_SESSION_TOKEN) is used.
    type: str
  s3_region:
    description:
      - Region name for request signing.
      - When omitted, the environment variable E(AWS_REGION), then E(AWS_DEFAULT_REGION), then V(us-east-1).
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
'''
