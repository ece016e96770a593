# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The probe of each check type: the one table the runner dispatches on.

Importing it loads every probe module but no client library: the docker SDK, pymongo, cryptography and the
PostgreSQL driver are imported by the probes that need them, when they first run.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mcp.platform.plugins.module_utils.health.containers import probe_container, probe_logs
from ansible_collections.mcp.platform.plugins.module_utils.health.datastores import (
    probe_mongodb,
    probe_postgres,
    probe_redis,
)
from ansible_collections.mcp.platform.plugins.module_utils.health.metrics import probe_gateway_errors
from ansible_collections.mcp.platform.plugins.module_utils.health.network import (
    probe_http,
    probe_mcp,
    probe_tcp,
    probe_tls,
)
from ansible_collections.mcp.platform.plugins.module_utils.health.system import probe_disk, probe_memory

PROBES = {
    "http": probe_http,
    "mcp": probe_mcp,
    "tcp": probe_tcp,
    "tls": probe_tls,
    "postgres": probe_postgres,
    "redis": probe_redis,
    "mongodb": probe_mongodb,
    "container": probe_container,
    "logs": probe_logs,
    "disk": probe_disk,
    "memory": probe_memory,
    "gateway_errors": probe_gateway_errors,
}
