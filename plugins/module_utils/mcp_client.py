# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A minimal Model Context Protocol client for the Streamable HTTP transport.

Why not the ``mcp`` SDK?  This code runs inside an Ansible module on the
*managed node*, where the SDK (and its asyncio/httpx/pydantic stack, Python
>= 3.10) is usually not installed and must not be required just to ask a
service "are you alive and do you speak MCP?".  The handshake needs only a few
JSON-RPC POSTs, so this client uses nothing but the standard library
(``urllib``, ``json``, ``ssl``).

What it does, following the MCP Streamable HTTP transport:

* ``initialize`` is POSTed with ``Accept: application/json, text/event-stream``;
  the reply may be a JSON body or a Server-Sent Events stream whose ``data:``
  lines carry JSON-RPC messages.  We read the stream only until the response to
  our request id arrives (the server may keep the stream open).
* the ``mcp-session-id`` response header, when present, is sent back on every
  later request, together with ``mcp-protocol-version`` (the negotiated version).
* ``notifications/initialized`` is POSTed (the server answers 202 Accepted),
  then ``tools/list`` (following ``nextCursor`` pages), and finally the session
  is closed with ``DELETE`` (405 means the server does not support that; fine).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket
import ssl
import time
from http.client import HTTPException
from urllib.error import HTTPError, URLError
from urllib.request import HTTPRedirectHandler, HTTPSHandler, Request, build_opener

from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError

DEFAULT_PROTOCOL_VERSION = "2025-06-18"
ACCEPT = "application/json, text/event-stream"
MAX_BODY = 4 * 1024 * 1024
MAX_TOOL_PAGES = 50
CLIENT_NAME = "mcp.platform.mcp_health"
CLIENT_VERSION = "1.0.0"


class MCPError(PlatformError):
    """The server did not complete a protocol step; ``step`` names it."""

    def __init__(self, step, message, status=None):
        super(MCPError, self).__init__("%s: %s" % (step, message))
        self.step = step
        self.status = status


def iter_sse_events(lines):
    """Yield SSE events (dicts with ``event``, ``data``, ``id``) from an iterable of lines.

    Lines may be ``bytes`` or ``str`` and may keep their line terminator.  Follows the
    WHATWG rules: ``field: value`` (one optional space after the colon), ``:`` comments,
    multi-line ``data`` joined with ``\\n``, an event dispatched on a blank line (or at EOF).
    """
    event = {"event": "message", "data": [], "id": None}
    has_data = False
    for raw in lines:
        line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        line = line.rstrip("\r\n")
        if line == "":
            if has_data:
                yield {"event": event["event"], "data": "\n".join(event["data"]), "id": event["id"]}
            event = {"event": "message", "data": [], "id": None}
            has_data = False
            continue
        if line.startswith(":"):
            continue
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            event["data"].append(value)
            has_data = True
        elif field == "event":
            event["event"] = value or "message"
        elif field == "id":
            event["id"] = value
        # "retry" and unknown fields are ignored
    if has_data:
        yield {"event": event["event"], "data": "\n".join(event["data"]), "id": event["id"]}


def parse_sse(text):
    """Parse a whole SSE document (str or bytes) into a list of events."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return list(iter_sse_events(text.splitlines()))


def _iter_lines(resp, deadline):
    """Read a response line by line, giving up once ``deadline`` (monotonic) has passed."""
    total = 0
    while True:
        if time.monotonic() > deadline:
            raise socket.timeout("timed out waiting for the event stream")
        line = resp.readline(65536)
        if not line:
            return
        total += len(line)
        if total > MAX_BODY:
            raise ValueError("event stream larger than %d bytes" % MAX_BODY)
        yield line


def _find_response(messages, request_id):
    for msg in messages:
        if isinstance(msg, dict) and msg.get("id") == request_id and ("result" in msg or "error" in msg):
            return msg
    return None


class _NoRedirect(HTTPRedirectHandler):
    """JSON-RPC POSTs must not be silently turned into GETs by a redirect."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # pylint: disable=too-many-arguments
        return None


class StreamableHTTPClient:
    """Talk MCP to one endpoint URL; see the module docstring for the exchange."""

    def __init__(self, url, timeout=5.0, headers=None, validate_certs=True, protocol_version=DEFAULT_PROTOCOL_VERSION):
        self.url = url
        self.timeout = float(timeout)
        self.extra_headers = dict(headers or {})
        self.requested_version = protocol_version
        self.protocol_version = None
        self.session_id = None
        self._next_id = 0
        ctx = ssl.create_default_context()
        if not validate_certs:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        self._opener = build_opener(HTTPSHandler(context=ctx), _NoRedirect())

    # -- transport -------------------------------------------------------------------------------
    def _headers(self):
        headers = {"Content-Type": "application/json", "Accept": ACCEPT, "User-Agent": "%s/%s" % (CLIENT_NAME, CLIENT_VERSION)}
        headers.update(self.extra_headers)
        if self.session_id:
            headers["mcp-session-id"] = self.session_id
        if self.protocol_version:
            headers["mcp-protocol-version"] = self.protocol_version
        return headers

    def _open(self, step, method, payload=None):
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        req = Request(self.url, data=data, headers=self._headers())
        req.get_method = lambda: method
        try:
            return self._opener.open(req, timeout=self.timeout)
        except HTTPError as exc:
            body = b""
            try:
                body = exc.read(2048)
            except Exception:  # pylint: disable=broad-except
                pass
            detail = body.decode("utf-8", "replace").strip().replace("\n", " ")[:200]
            raise MCPError(step, "HTTP %s %s%s" % (exc.code, exc.reason, (": " + detail) if detail else ""), status=exc.code)
        except URLError as exc:
            raise MCPError(step, "cannot connect: %s" % (exc.reason,))
        except (socket.timeout, ssl.SSLError, OSError, HTTPException) as exc:
            raise MCPError(step, "cannot connect: %s" % (exc,))

    def request(self, method, params=None):
        """Send a JSON-RPC request; return ``(result, response headers)``; raise MCPError."""
        self._next_id += 1
        req_id = self._next_id
        payload = {"jsonrpc": "2.0", "id": req_id, "method": method}
        if params is not None:
            payload["params"] = params
        resp = self._open(method, "POST", payload)
        try:
            status = resp.getcode()
            ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if status == 202:
                raise MCPError(method, "server answered 202 Accepted to a request (no response)", status=status)
            if ctype == "text/event-stream":
                msg = self._read_sse(method, resp, req_id)
            elif ctype == "application/json":
                try:
                    body = json.loads(resp.read(MAX_BODY).decode("utf-8"))
                except ValueError as exc:
                    raise MCPError(method, "invalid JSON response: %s" % exc, status=status)
                msg = _find_response(body if isinstance(body, list) else [body], req_id)
                if msg is None:
                    raise MCPError(method, "JSON response does not answer request id %s" % req_id, status=status)
            else:
                raise MCPError(method, "unexpected Content-Type %r (HTTP %s)" % (ctype or None, status), status=status)
            headers = resp.headers
        except (socket.timeout, OSError, HTTPException) as exc:
            # HTTPException: IncompleteRead when a proxy sends the headers of a chunked answer and
            # then loses its upstream (seen through Traefik with SSE answers) - a failed step, not a crash
            raise MCPError(method, "reading response: %s" % (exc.__class__.__name__ if not str(exc) else exc,))
        finally:
            resp.close()
        if "error" in msg:
            err = msg["error"] if isinstance(msg["error"], dict) else {"message": str(msg["error"])}
            raise MCPError(method, "JSON-RPC error %s: %s" % (err.get("code"), err.get("message")), status=status)
        return msg.get("result"), headers

    def _read_sse(self, method, resp, req_id):
        deadline = time.monotonic() + self.timeout
        try:
            for event in iter_sse_events(_iter_lines(resp, deadline)):
                if event["event"] != "message" or not event["data"]:
                    continue
                try:
                    data = json.loads(event["data"])
                except ValueError:
                    raise MCPError(method, "invalid JSON in SSE data line: %r" % event["data"][:120])
                msg = _find_response(data if isinstance(data, list) else [data], req_id)
                if msg is not None:
                    return msg
        except ValueError as exc:
            raise MCPError(method, str(exc))
        raise MCPError(method, "event stream ended without a response to request id %s" % req_id)

    def notify(self, method, params=None):
        """Send a JSON-RPC notification; return the HTTP status (202 expected)."""
        payload = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            payload["params"] = params
        resp = self._open(method, "POST", payload)
        try:
            return resp.getcode()
        finally:
            resp.close()

    # -- protocol steps --------------------------------------------------------------------------
    def initialize(self):
        params = {
            "protocolVersion": self.requested_version,
            "capabilities": {},
            "clientInfo": {"name": CLIENT_NAME, "version": CLIENT_VERSION},
        }
        result, headers = self.request("initialize", params)
        if not isinstance(result, dict) or "protocolVersion" not in result:
            raise MCPError("initialize", "result has no protocolVersion")
        self.session_id = headers.get("mcp-session-id") or None
        self.protocol_version = result.get("protocolVersion")
        return result

    def initialized(self):
        status = self.notify("notifications/initialized")
        if status < 200 or status >= 300:
            raise MCPError("notifications/initialized", "HTTP %s (expected 202)" % status, status=status)
        return status

    def list_tools(self):
        tools = []
        cursor = None
        for _page in range(MAX_TOOL_PAGES):
            result, _headers = self.request("tools/list", {"cursor": cursor} if cursor else None)
            if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
                raise MCPError("tools/list", "result has no tools list")
            tools.extend(result["tools"])
            cursor = result.get("nextCursor")
            if not cursor:
                break
        return tools

    def close(self):
        """DELETE the session; return the HTTP status or None (errors are not fatal)."""
        if not self.session_id:
            return None
        try:
            resp = self._open("close", "DELETE")
            resp.close()
            return resp.getcode()
        except MCPError as exc:
            return exc.status
