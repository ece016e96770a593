# -*- coding: utf-8 -*-
"""mcp_client: SSE parsing and real handshakes against MCP servers (the SDK server in a subprocess,
and hand-written broken endpoints). No mocks: every probe talks HTTP to a real socket on 127.0.0.1."""
from __future__ import absolute_import, division, print_function

import json
import os
import random
import socket
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.mcp.platform.plugins.module_utils.health.checks import validate_check
from ansible_collections.mcp.platform.plugins.module_utils.health.network import probe_http, probe_mcp
from ansible_collections.mcp.platform.plugins.module_utils.mcp_client import (
    MCPError,
    StreamableHTTPClient,
    iter_sse_events,
    parse_sse,
)


def free_port():
    for _attempt in range(200):
        port = random.randint(31000, 31999)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 31000-31999")


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


def _wait_port(port, proc, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("MCP server exited: %s" % proc.stderr.read().decode("utf-8", "replace")[-2000:])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("MCP server did not listen on %d" % port)


@pytest.fixture(scope="module")
def mcp_servers(tmp_path_factory):
    """Start the SDK server in three modes: SSE replies, JSON replies, and a broken /mcp."""
    script = tmp_path_factory.mktemp("mcp") / "server.py"
    script.write_text(SERVER)
    procs, urls = [], {}
    try:
        for mode in ("sse", "json", "badhost"):
            port = free_port()
            proc = subprocess.Popen([sys.executable, str(script), str(port), mode],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            procs.append(proc)
            urls[mode] = "http://127.0.0.1:%d" % port
            _wait_port(port, proc)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


def mcp_check(url, **kw):
    check = {"name": "m", "type": "mcp", "url": url}
    check.update(kw)
    return validate_check(check, 0)


# --------------------------------------------------------------------------------------------
# SSE parsing
# --------------------------------------------------------------------------------------------
def test_parse_sse_basic_and_multiline():
    text = "event: message\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n: comment\ndata:x\n\nid: 7\ndata: last"
    events = parse_sse(text)
    assert events[0] == {"event": "message", "data": '{"a":\n1}', "id": None}
    assert json.loads(events[0]["data"]) == {"a": 1}
    assert events[1]["data"] == "x"  # no space after the colon
    assert events[2] == {"event": "message", "data": "last", "id": "7"}  # dispatched at EOF


def test_parse_sse_bytes_and_ignores_eventless_blocks():
    lines = [b"retry: 1000\n", b"\n", b"event: ping\n", b"data: \n", b"\n", b"data:  two spaces\n", b"\n"]
    events = list(iter_sse_events(lines))
    assert [e["event"] for e in events] == ["ping", "message"]
    assert events[0]["data"] == ""
    assert events[1]["data"] == " two spaces"


def test_parse_sse_empty():
    assert parse_sse("") == []
    assert parse_sse(": keepalive\n\n") == []


# --------------------------------------------------------------------------------------------
# real SDK server
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["sse", "json"])
def test_handshake_against_sdk_server(mcp_servers, mode):
    client = StreamableHTTPClient(mcp_servers[mode] + "/mcp", timeout=5)
    init = client.initialize()
    assert init["serverInfo"] == {"name": "filesystem", "version": "1.4.2"}
    assert client.session_id
    assert client.protocol_version == "2025-06-18"
    assert client.initialized() == 202
    tools = client.list_tools()
    assert sorted(t["name"] for t in tools) == ["list_dir", "read_file", "stat"]
    assert client.close() == 200
    # the session is gone now
    with pytest.raises(MCPError) as err:
        client.list_tools()
    assert err.value.status == 404


def test_probe_mcp_ok_and_expectations(mcp_servers):
    res = probe_mcp(mcp_check(mcp_servers["sse"] + "/mcp", expect_server_name="filesystem",
                              expect_version="1.4.2", min_tools=3))
    assert res["status"] == "ok", res
    d = res["details"]
    assert (d["protocol_version"], d["server_name"], d["server_version"], d["tool_count"]) == ("2025-06-18", "filesystem", "1.4.2", 3)
    assert d["session"] is True and d["initialized_status"] == 202 and d["session_closed_status"] == 200
    assert res["reason"] == "MCP filesystem 1.4.2 (protocol 2025-06-18), 3 tools"

    res = probe_mcp(mcp_check(mcp_servers["json"] + "/mcp", expect_version="2.0.0", min_tools=5))
    assert res["status"] == "crit"
    assert "server version '1.4.2' != expected '2.0.0'" in res["reason"]
    assert "3 tools < min_tools 5" in res["reason"]


def test_probe_mcp_older_protocol_negotiated(mcp_servers):
    res = probe_mcp(mcp_check(mcp_servers["sse"] + "/mcp", protocol_version="2025-03-26"))
    assert res["status"] == "ok"
    assert res["details"]["protocol_version"] == "2025-03-26"


def test_health_200_but_mcp_broken_is_crit(mcp_servers):
    base = mcp_servers["badhost"]
    health = probe_http(validate_check({"name": "h", "type": "http", "url": base + "/health"}, 0))
    assert health["status"] == "ok"
    res = probe_mcp(mcp_check(base + "/mcp"))
    assert res["status"] == "crit"
    assert res["reason"].startswith("MCP handshake failed at initialize: HTTP 421"), res["reason"]


def test_mcp_wrong_path_is_crit(mcp_servers):
    res = probe_mcp(mcp_check(mcp_servers["sse"] + "/nope"))
    assert res["status"] == "crit" and "HTTP 404" in res["reason"]


# --------------------------------------------------------------------------------------------
# hand-written endpoints: protocol corner cases and breakage
# --------------------------------------------------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, code, ctype, body, extra=None):
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send(200, "application/json", '{"status":"ok"}')

    def do_DELETE(self):
        self._send(405, "text/plain", "no")

    def do_POST(self):
        msg = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        path = self.path
        if "id" not in msg:  # notification
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/html":
            return self._send(200, "text/html", "<html>gateway error</html>")
        if path == "/500":
            return self._send(500, "text/plain", "upstream crashed")
        if path == "/rpcerror":
            error = {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32600, "message": "bad"}}
            return self._send(200, "application/json", json.dumps(error))
        if path == "/sse-empty":
            return self._send(200, "text/event-stream", ": nothing\n\n")
        if path == "/cut":  # headers of a chunked stream, then the connection drops (a proxy losing its upstream)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"20\r\nevent: message\r\n")
            self.wfile.flush()
            self.close_connection = True
            return None
        if path == "/hang":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(b": keepalive\n\n")
            self.wfile.flush()
            time.sleep(3)
            return None
        # /tricky: an SSE stream with a comment, a server notification first, multi-line data and a session
        if msg["method"] == "initialize":
            assert self.headers["Accept"] == "application/json, text/event-stream"
            result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}, "serverInfo": {"name": "tricky", "version": "0.1"}}
        else:
            assert self.headers["mcp-session-id"] == "abc", "session id not sent back"
            assert self.headers["mcp-protocol-version"] == "2025-06-18"
            cursor = (msg.get("params") or {}).get("cursor")
            result = {"tools": [{"name": "t2"}]} if cursor else {"tools": [{"name": "t1"}], "nextCursor": "p2"}
        body = json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}, indent=1)
        sse = ": hello\n\nevent: message\ndata: %s\n\n" % json.dumps({"jsonrpc": "2.0", "method": "notifications/message", "params": {}})
        sse += "event: message\n" + "".join("data: %s\n" % line for line in body.splitlines()) + "\n"
        return self._send(200, "text/event-stream; charset=utf-8", sse, {"mcp-session-id": "abc"})


@pytest.fixture(scope="module")
def fake_mcp():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()


def test_tricky_sse_session_and_pagination(fake_mcp):
    res = probe_mcp(mcp_check(fake_mcp + "/tricky"))
    assert res["status"] == "ok", res
    assert res["details"]["tools"] == ["t1", "t2"]
    assert res["details"]["session_closed_status"] == 405  # DELETE not supported: fine


@pytest.mark.parametrize("path,expect", [
    ("/html", "initialize: unexpected Content-Type 'text/html'"),
    ("/500", "initialize: HTTP 500"),
    ("/rpcerror", "initialize: JSON-RPC error -32600: bad"),
    ("/sse-empty", "initialize: event stream ended without a response"),
    ("/cut", "initialize: reading response: "),
])
def test_broken_endpoints_are_crit(fake_mcp, path, expect):
    res = probe_mcp(mcp_check(fake_mcp + path))
    assert res["status"] == "crit"
    assert expect in res["reason"], res["reason"]


def test_hanging_stream_times_out(fake_mcp):
    start = time.monotonic()
    res = probe_mcp(mcp_check(fake_mcp + "/hang", timeout=0.5))
    assert res["status"] == "crit"
    assert "timed out" in res["reason"]
    assert time.monotonic() - start < 2.5


def test_refused_is_crit():
    res = probe_mcp(mcp_check("http://127.0.0.1:%d/mcp" % free_port()))
    assert res["status"] == "crit" and "Connection refused" in res["reason"]


def test_client_needs_no_sdk():
    """The client module must import nothing beyond the standard library (it runs on managed nodes)."""
    code = ("import sys; sys.modules['mcp'] = None; sys.modules['httpx'] = None; sys.modules['pydantic'] = None; "
            "import ansible_collections.mcp.platform.plugins.module_utils.mcp_client as m; print(m.DEFAULT_PROTOCOL_VERSION)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "2025-06-18"


LAB_GATEWAY = ("127.0.0.11", 28080)


def _lab_gateway_up():
    try:
        socket.create_connection(LAB_GATEWAY, timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _lab_gateway_up(), reason="lab gateway 127.0.0.11:28080 is not running (make lab-up)")
@pytest.mark.parametrize("service", ["filesystem", "git"])
def test_lab_gateway_handshake(service):
    base = "http://%s:%d/mcp/%s" % (LAB_GATEWAY + (service,))
    health = probe_http(validate_check({"name": "h", "type": "http", "url": base + "/health"}, 0))
    if health["status"] != "ok":
        pytest.skip("lab service %s is not healthy behind the gateway yet: %s" % (service, health["reason"]))
    res = probe_mcp(mcp_check(base + "/mcp", min_tools=1))
    assert res["status"] == "ok", res
    assert res["details"]["server_name"] and res["details"]["server_version"]
