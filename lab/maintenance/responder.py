"""MCP Platform maintenance responder (standard library only, Python 3.8+).

Traefik sends requests for services in maintenance here (routers written by
``mcp.platform.mcp_maintenance`` into the dynamic folder's ``maintenance.yml``, with the request
header ``X-MCP-Maintenance-Service: <service>``). Every request is answered with
``503 Service Unavailable``, a ``Retry-After`` header and a body carrying the maintenance message
(JSON by default, plain text when the client asks for text/plain or text/html).

On each request the responder calls ``maintenance.reconcile()`` (the collection's
``plugins/module_utils/maintenance.py``, loaded by path), which drops expired windows and rewrites
``maintenance.json`` and the gateway file. So an expired window lifts itself without Ansible:
the request that notices the expiry gets ``307`` to the same URL (``Retry-After: 0``,
``X-MCP-Maintenance: ended``) after a 0.5 s pause; Traefik, watching the folder, routes the retry to
the service once it has applied the change (its providers throttle is 2 s by default).
The state file is read on every request, so a changed message needs no restart.

    responder.py --listen 127.0.0.1:28090 --state-file /var/lib/mcp/maintenance.json \
                 [--maintenance-lib /path/to/maintenance.py]

``--maintenance-lib`` defaults to ``maintenance.py`` next to this file, then to
``../../plugins/module_utils/maintenance.py`` (the collection checkout). ``GET /__responder/health``
answers 200 (Traefik routes only ``/mcp/<service>`` here, so clients never see it).
"""

import argparse
import importlib.util
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
REDIRECT_DELAY = 0.5


def load_lib(path=None):
    candidates = [path] if path else [os.path.join(HERE, "maintenance.py"),
                                      os.path.join(HERE, "..", "..", "plugins", "module_utils", "maintenance.py")]
    for cand in candidates:
        if cand and os.path.isfile(cand):
            spec = importlib.util.spec_from_file_location("mcp_maintenance_lib", cand)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            return mod
    raise SystemExit("maintenance.py not found (tried %s); pass --maintenance-lib" % ", ".join(c for c in candidates if c))


class Handler(BaseHTTPRequestHandler):
    server_version = "mcp-maintenance-responder/1"
    lib = None
    state_dir = None
    quiet = False
    lock = threading.Lock()

    def log_message(self, fmt, *args):  # noqa: N802 - stdlib name
        if not self.quiet:
            sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

    def _service(self):
        svc = self.headers.get(self.lib.SERVICE_HEADER)
        if svc:
            return svc.strip()
        parts = self.path.split("?", 1)[0].split("/")
        if len(parts) > 2 and parts[1] == "mcp":
            return parts[2]
        return None

    def _send(self, code, body, ctype, headers=None):
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        if self.path.startswith("/__responder/health"):
            return self._send(200, '{"status": "ok"}\n', "application/json")
        now = time.time()
        svc = self._service()
        try:
            with self.lock:
                self.lib.reconcile(self.state_dir, now=now)
            state = self.lib.load_state(self.state_dir)
        except Exception as exc:  # state unreadable: stay in maintenance, say why in the log
            self.log_message("reconcile failed: %s", exc)
            state = None
        entry = None
        if state is not None and svc:
            entry = self.lib.active(state, now).get(svc)
        if state is not None and entry is None:
            # Not (or no longer) in maintenance: the gateway file has just been rewritten; retry. Traefik
            # applies the change within its providers throttle (2 s by default): slow the redirect loop down.
            time.sleep(REDIRECT_DELAY)
            return self._send(307, "maintenance for %s has ended; retry\n" % svc, "text/plain; charset=utf-8",
                              {"Location": self.path, "Retry-After": "0", "X-MCP-Maintenance": "ended"})
        entry = entry or {}
        retry = self.lib.retry_after_for(entry, now) if entry else 60
        msg = entry.get("message") or "This service is under maintenance."
        accept = (self.headers.get("Accept") or "").lower()
        headers = {"Retry-After": str(retry), "X-MCP-Maintenance": "active"}
        if "text/plain" in accept or "text/html" in accept:
            body = "503 Service Unavailable: %s is under maintenance.\n%s\n%sRetry after %d s.\n" % (
                svc, msg, "Until %s. " % entry["until"] if entry.get("until") else "", retry)
            return self._send(503, body, "text/plain; charset=utf-8", headers)
        body = json.dumps({"error": "maintenance", "status": 503, "service": svc, "message": msg,
                           "since": entry.get("since"), "until": entry.get("until"), "retry_after": retry}) + "\n"
        return self._send(503, body, "application/json", headers)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any  # noqa: N815


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--listen", default="127.0.0.1:28090", help="HOST:PORT")
    ap.add_argument("--state-file", required=True, help="<state_dir>/maintenance.json")
    ap.add_argument("--maintenance-lib", default=None, help="path of the collection's maintenance.py")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    host, _sep, port = args.listen.rpartition(":")
    Handler.lib = load_lib(args.maintenance_lib)
    Handler.state_dir = os.path.dirname(os.path.abspath(args.state_file))
    Handler.quiet = args.quiet
    if not os.path.isdir(Handler.state_dir):
        raise SystemExit("state folder %s does not exist" % Handler.state_dir)
    srv = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
    srv.daemon_threads = True
    sys.stderr.write("maintenance responder on %s, state %s\n" % (args.listen, args.state_file))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
