# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mcp.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # The PostgreSQL connection vocabulary (module_utils/postgres.py: postgres_argument_spec()).
    DOCUMENTATION = r"""
options:
  postgres_dsn:
    description:
      - libpq connection string (C(host=... port=... user=...)) or URI (C(postgresql://user@host:5432/db)) of the
        database.
      - "Where each connection parameter comes from, highest first: the explicit option (O(postgres_host),
        O(postgres_port), O(postgres_user), O(postgres_password), O(postgres_dbname), O(postgres_ssl_mode)), then
        this DSN, then the libpq environment of the module (C(PGHOST), C(PGPORT), C(PGUSER), C(PGPASSWORD),
        C(PGDATABASE), C(PGSSLMODE)) - the order libpq itself applies."
      - A password from any of them is masked in every message. Never logged.
    type: str
  postgres_host:
    description: Database host (or socket folder). Overrides the DSN's C(host) and C(PGHOST).
    type: str
  postgres_port:
    description: Database port. Overrides the DSN's C(port) and C(PGPORT).
    type: int
  postgres_user:
    description: Database user. Overrides the DSN's C(user) and C(PGUSER).
    type: str
  postgres_password:
    description: Database password. Overrides the DSN's C(password) and C(PGPASSWORD). Never logged.
    type: str
  postgres_dbname:
    description: Database name. Overrides the DSN's C(dbname) and C(PGDATABASE).
    type: str
  postgres_ssl_mode:
    description: libpq C(sslmode). Overrides the DSN's C(sslmode) and C(PGSSLMODE).
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  connect_timeout:
    description: Seconds to wait for each PostgreSQL connection.
    type: int
    default: 5
"""
