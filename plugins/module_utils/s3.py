# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The S3 connection vocabulary every module that talks to a bucket accepts (PRIVATE to the collection).

The environment fallbacks are the AWS CLI's and amazon.aws's, so an AWX "Amazon Web Services" credential (which
injects ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``) or an instance's exported
variables work without repeating them in every task. They are resolved here, not left to boto3's chain, so
that a key that came from the environment is known to Ansible and masked like an option (``no_log``).
Documented once in the ``mcp.platform.s3`` doc fragment.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import env_fallback


def s3_argument_spec():
    return dict(
        s3_endpoint_url=dict(type='str', fallback=(env_fallback, ['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL'])),
        s3_bucket=dict(type='str'),
        s3_prefix=dict(type='str', default=''),
        s3_access_key=dict(type='str', no_log=False, fallback=(env_fallback, ['AWS_ACCESS_KEY_ID'])),
        s3_secret_key=dict(type='str', no_log=True, fallback=(env_fallback, ['AWS_SECRET_ACCESS_KEY'])),
        s3_session_token=dict(type='str', no_log=True, fallback=(env_fallback, ['AWS_SESSION_TOKEN'])),
        s3_region=dict(type='str', default='us-east-1', fallback=(env_fallback, ['AWS_REGION', 'AWS_DEFAULT_REGION'])),
        s3_server_side_encryption=dict(type='str', choices=['AES256', 'aws:kms', 'none'], default='AES256'),
        s3_retries=dict(type='int', default=5),
    )
