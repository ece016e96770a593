# -*- coding: utf-8 -*-
"""mcp_client: SSE parsing, and a refused connection (nothing listens). The handshakes against real MCP servers are in
tests/component/plugins/module_utils/test_health_mcp_client.py."""
from __future__ import absolute_import, division, print_function

import json

from support.health import mcp_check
from support.ports import free_port

from ansible_collections.mcp.platform.plugins.module_utils.health.network import probe_mcp
from ansible_collections.mcp.platform.plugins.module_utils.mcp_client import iter_sse_events, parse_sse


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


def test_refused_is_crit():
    res = probe_mcp(mcp_check("http://127.0.0.1:%d/mcp" % free_port()))
    assert res["status"] == "crit" and "Connection refused" in res["reason"]
