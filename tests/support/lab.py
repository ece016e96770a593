# -*- coding: utf-8 -*-
"""Where the component tests find the lab's real parts: an MCP host's engine and gateway, the PostgreSQL pair.

The values come from the lab's own code (hack/mcplab), as for tests/integration and bench: a lab moved to other
addresses moves the tests with it. A part that is not up makes its tests skip, naming it (make lab-up).
"""

import os
import sys

from support import ROOT

sys.path.insert(0, os.path.join(ROOT, "hack"))
from mcplab import hosts as _hosts  # noqa: E402  # pylint: disable=wrong-import-position
from mcplab.common import CFG, lab_hosts  # noqa: E402  # pylint: disable=wrong-import-position

HOSTS = lab_hosts()
MCP_HOST = sorted(h for h, i in HOSTS.items() if i["kind"] == "mcp")[0]
PG_NODES = sorted(h for h, i in HOSTS.items() if i["kind"] == "pg")

#: the first MCP host's engine, as the lab reaches it (the socket of its bind-mounted run folder)
ENGINE_SOCK = _hosts.engine_socket(MCP_HOST)
#: (address, port) of the first MCP host's gateway
GATEWAY = (HOSTS[MCP_HOST]["address"], int(CFG["lab_gateway_http_port"]))
#: (address, port) of every PostgreSQL node; which one is primary is asked, a failover test may have swapped them
PG = [(HOSTS[n]["address"], 5432) for n in PG_NODES]
PG_ADMIN_PASSWORD = CFG["lab_pg_admin_password"]


def pg_dsn(addr, password=PG_ADMIN_PASSWORD):
    return "host=%s port=%d user=postgres password=%s dbname=postgres connect_timeout=5" % (addr[0], addr[1], password)
