# -*- coding: utf-8 -*-
"""The official MCP SDK's server in a subprocess (the fixture is ``mcp_servers`` in tests/component/conftest.py)."""
from __future__ import absolute_import, division, print_function

import subprocess
import sys
import textwrap

from support.ports import free_port
from support.waiting import wait_port

MODES = ("sse", "json", "badhost")

SERVER = textwrap.dedent('''
    import sys
    from mcp.server.mcpserver import MCPServer
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.responses import JSONResponse

    port, mode = int(sys.argv[1]), sys.argv[2]
    app = MCPServer("filesystem", version="1.4.2", log_level="WARNING")

    @app.tool()
    def read_file(path: str) -> str:
        """Read a file."""
        return path

    @app.tool()
    def list_dir(path: str) -> list[str]:
        """List a directory."""
        return [path]

    @app.tool()
    def stat(path: str) -> dict:
        """Stat a path."""
        return {"path": path}

    @app.custom_route("/health", methods=["GET"])
    async def health(request):
        return JSONResponse({"status": "ok"})

    kwargs = {}
    if mode == "json":
        kwargs["json_response"] = True
    if mode == "badhost":
        # /health answers 200, but /mcp rejects every request (Host check): a broken service
        kwargs["transport_security"] = TransportSecuritySettings(
            enable_dns_rebinding_protection=True, allowed_hosts=["mcp.example:*"], allowed_origins=[])
    app.run(transport="streamable-http", host="127.0.0.1", port=port, **kwargs)
''')


def start_sdk_server(script, mode):
    """Run the server ``script`` (SERVER written to a file) in ``mode`` (one of MODES): (Popen, base URL), listening."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(script), str(port), mode], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_port(port, 30.0, proc, what="MCP server")
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc, "http://127.0.0.1:%d" % port
