# -*- coding: utf-8 -*-
"""mcp_client: real handshakes against MCP servers (the SDK server in a subprocess, ``mcp_servers``, and a
hand-written endpoint with broken variants, ``fake_mcp``; tests/component/conftest.py). No mocks: every probe talks
HTTP to a real socket on 127.0.0.1. SSE parsing is in tests/unit."""
from __future__ import absolute_import, division, print_function

import os
import subprocess
import sys
import time

import pytest
from support.health import mcp_check
from support.lab import GATEWAY as LAB_GATEWAY
from support.ports import answers

from ansible_collections.mcp.platform.plugins.module_utils.health.checks import validate_check
from ansible_collections.mcp.platform.plugins.module_utils.health.network import probe_http, probe_mcp
from ansible_collections.mcp.platform.plugins.module_utils.mcp_client import MCPError, StreamableHTTPClient


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


def test_client_needs_no_sdk():
    """The client module must import nothing beyond the standard library (it runs on managed nodes)."""
    code = ("import sys; sys.modules['mcp'] = None; sys.modules['httpx'] = None; sys.modules['pydantic'] = None; "
            "import ansible_collections.mcp.platform.plugins.module_utils.mcp_client as m; print(m.DEFAULT_PROTOCOL_VERSION)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "2025-06-18"


@pytest.mark.skipif(not answers(*LAB_GATEWAY, timeout=0.5), reason="the lab's gateway %s:%d is not running (make lab-up)" % LAB_GATEWAY)
@pytest.mark.parametrize("service", ["filesystem", "git"])
def test_lab_gateway_handshake(service):
    base = "http://%s:%d/mcp/%s" % (LAB_GATEWAY + (service,))
    health = probe_http(validate_check({"name": "h", "type": "http", "url": base + "/health"}, 0))
    if health["status"] != "ok":
        pytest.skip("lab service %s is not healthy behind the gateway yet: %s" % (service, health["reason"]))
    res = probe_mcp(mcp_check(base + "/mcp", min_tools=1))
    assert res["status"] == "ok", res
    assert res["details"]["server_name"] and res["details"]["server_version"]
