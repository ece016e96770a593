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

import re

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.six.moves.urllib.parse import urlparse

from ansible_collections.mcp.platform.plugins.module_utils.validation import ValidationError, number

# botocore's own rule for a region name; anything else it raises InvalidRegionError for, as a traceback.
_REGION = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\Z")


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


def check_s3_params(params):
    """Refuse values botocore would turn into a traceback or an endless retry; ValidationError names the option."""
    url = params.get('s3_endpoint_url')
    if url:
        parsed = urlparse(url)
        try:
            port_ok = parsed.port is None or 0 < parsed.port < 65536
        except ValueError:
            port_ok = False
        if parsed.scheme not in ('http', 'https') or not parsed.hostname or not port_ok:
            raise ValidationError('s3_endpoint_url must be http(s)://host[:port][/path], got %r' % url)
    region = params.get('s3_region')
    if region is not None and not _REGION.match(region):
        raise ValidationError('s3_region %r is not a region name (letters, digits and dashes, e.g. eu-west-1)' % region)
    if params.get('s3_retries') is not None:
        number('s3_retries', params['s3_retries'], minimum=1, maximum=20, integer=True)
