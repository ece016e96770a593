"""One MCP server program for every mcp.platform lab service.

Built on the official MCP Python SDK (mcp 2.x, ``MCPServer``), served over Streamable HTTP on
``$MCP_HOST:$MCP_PORT/mcp`` (0.0.0.0:8080 by default) with three plain routes next to it:

* ``GET /health``  -> 200 ``{"status": "ok", ...}`` or 503 ``{"status": "unhealthy", ...}``
* ``GET /version`` -> ``{"service": NAME, "version": VERSION}``
* ``GET /slow?ms=300`` -> sleeps, then 200 (for benchmarks through the gateway)
* ``POST /drain``  -> 200; from then on /health answers 503 ``draining`` so the gateway's active health
  check takes the replica out of rotation before it is stopped (requests still in flight are served)

Environment:

* ``MCP_SERVICE``   filesystem | git (required; server name is ``mcp-<service>``)
* ``MCP_VERSION``   reported version (default 0.0.0)
* ``MCP_BEHAVIOUR`` healthy (default) | unhealthy | degrade-after:N | broken-mcp
* ``MCP_DATA_DIR``  data folder (default /data); the filesystem tools are confined to it
* ``MCP_GIT_REPO``  repository folder for the git service (default $MCP_DATA_DIR/repo)
* ``MCP_SEED_DATA`` 1 (default): put a few sample files / a small demo git repo into an empty data dir
* ``MCP_STATELESS`` 1 (default): stateless Streamable HTTP, so any replica behind the gateway can
  answer any request (no sticky sessions needed); 0 keeps SDK sessions (``mcp-session-id``)
* ``MCP_JSON_RESPONSE`` 1 (default): answer each POST with one ``application/json`` body; 0 answers
  with a Server-Sent Events stream. Measured on this lab: through the Traefik gateway about 3 in
  1000 SSE answers from a stateless SDK server reached the client as headers with the body cut off
  (curl: "transfer closed with outstanding read data remaining"; SDK client: "SSE stream ended
  without a response"), 0 in 2700 as JSON; straight to the replica both were clean.
* ``MCP_ALLOWED_HOSTS`` comma list (e.g. ``127.0.0.11:*,localhost:*``): turns the SDK's DNS-rebinding
  Host/Origin check on with that list. Unset (default): the check is off, since requests arrive
  through the Traefik gateway with the gateway's Host header.
* ``MCP_HOST`` / ``MCP_PORT`` listen address (default 0.0.0.0 / 8080)
* ``MCP_LOG_LEVEL`` (default INFO)

One log line per HTTP request: INFO normally, WARNING when /health answers 503, ERROR when the
MCP endpoint answers 5xx (what the daily check counts). SIGTERM/SIGINT stop the server within
about two seconds, exit status 0.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import signal
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings

SERVICES = ("filesystem", "git")
MAX_READ_BYTES = 1024 * 1024
STARTED = time.monotonic()
STOPPING = False  # set when SIGTERM/SIGINT arrives, so long requests (/slow) end at once
DRAINING = False  # set by POST /drain: /health answers 503 so the gateway stops routing here

log = logging.getLogger("mcp-lab")


# --------------------------------------------------------------------------- configuration
class Config:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ if env is None else env)
        self.service = env.get("MCP_SERVICE", "").strip()
        if self.service not in SERVICES:
            raise ValueError(f"MCP_SERVICE must be one of {', '.join(SERVICES)}; got {self.service!r}")
        self.version = env.get("MCP_VERSION", "").strip() or "0.0.0"
        self.behaviour, self.degrade_after = parse_behaviour(env.get("MCP_BEHAVIOUR", ""))
        self.data_dir = Path(env.get("MCP_DATA_DIR", "").strip() or "/data")
        self.git_repo = Path(env.get("MCP_GIT_REPO", "").strip() or self.data_dir / "repo")
        self.seed = env.get("MCP_SEED_DATA", "1").strip().lower() not in ("0", "false", "no", "")
        self.stateless = env.get("MCP_STATELESS", "1").strip().lower() not in ("0", "false", "no", "")
        self.json_response = env.get("MCP_JSON_RESPONSE", "1").strip().lower() not in ("0", "false", "no", "")
        self.allowed_hosts = [h.strip() for h in env.get("MCP_ALLOWED_HOSTS", "").split(",") if h.strip()]
        self.host = env.get("MCP_HOST", "").strip() or "0.0.0.0"
        self.port = int(env.get("MCP_PORT", "").strip() or "8080")
        self.log_level = (env.get("MCP_LOG_LEVEL", "").strip() or "INFO").upper()

    @property
    def name(self) -> str:
        return f"mcp-{self.service}"


def parse_behaviour(raw: str) -> tuple[str, float | None]:
    value = (raw or "").strip().lower() or "healthy"
    if value in ("healthy", "unhealthy", "broken-mcp"):
        return value, None
    if value.startswith("degrade-after:"):
        try:
            seconds = float(value.split(":", 1)[1])
        except ValueError:
            seconds = -1
        if seconds >= 0:
            return "degrade-after", seconds
    raise ValueError(
        f"MCP_BEHAVIOUR must be healthy, unhealthy, degrade-after:<seconds> or broken-mcp; got {raw!r}"
    )


def health_state(cfg: Config, now: float | None = None) -> tuple[bool, str]:
    """(healthy, reason) for the configured behaviour."""
    uptime = (time.monotonic() if now is None else now) - STARTED
    if cfg.behaviour == "unhealthy":
        return False, "lab behaviour 'unhealthy': this version never becomes healthy"
    if cfg.behaviour == "degrade-after" and uptime >= (cfg.degrade_after or 0):
        return False, f"lab behaviour 'degrade-after:{cfg.degrade_after:g}': degraded after {cfg.degrade_after:g}s"
    return True, "ok"


# --------------------------------------------------------------------------- filesystem tools
def confined(data_dir: Path, path: str) -> Path:
    """Resolve ``path`` (relative to the data dir, or absolute inside it); refuse anything outside."""
    root = data_dir.resolve()
    rel = (path or ".").strip()
    candidate = Path(rel)
    if candidate.is_absolute():
        try:
            candidate = candidate.relative_to(root)
        except ValueError:
            candidate = Path(str(candidate).lstrip("/"))
    target = (root / candidate).resolve()
    if target != root and root not in target.parents:
        raise ToolError(f"path {path!r} is outside the data directory")
    return target


def list_files_in(data_dir: Path, path: str = ".") -> dict[str, Any]:
    target = confined(data_dir, path)
    if not target.exists():
        raise ToolError(f"no such directory: {path!r}")
    if not target.is_dir():
        raise ToolError(f"not a directory: {path!r}")
    entries = []
    for child in sorted(target.iterdir(), key=lambda p: p.name):
        st = child.lstat()
        kind = "dir" if child.is_dir() else "file" if child.is_file() else "other"
        entries.append({"name": child.name, "type": kind, "size": st.st_size if kind == "file" else None,
                        "modified": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime))})
    rel = str(target.relative_to(data_dir.resolve())) if target != data_dir.resolve() else "."
    return {"path": rel, "entries": entries, "count": len(entries)}


def read_file_in(data_dir: Path, path: str) -> str:
    target = confined(data_dir, path)
    if not target.is_file():
        raise ToolError(f"no such file: {path!r}")
    if target.stat().st_size > MAX_READ_BYTES:
        raise ToolError(f"file {path!r} is larger than {MAX_READ_BYTES} bytes")
    return target.read_bytes().decode("utf-8", errors="replace")


def seed_filesystem(data_dir: Path) -> None:
    files = {
        "README.md": "# MCP filesystem service data\n\nSample documents served by the lab filesystem service.\n",
        "docs/runbook.md": "# Runbook\n\n1. Check /health\n2. Check /version\n3. Call the ping tool\n",
        "docs/architecture.txt": "gateway (traefik) -> mcp-filesystem replicas -> /data volume\n",
        "reports/2026-11-daily.csv": "date,requests,errors\n2026-11-22,10432,3\n2026-11-23,11207,1\n",
    }
    for rel, text in files.items():
        p = data_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- git tools (no git binary)
def _git_sha(kind: str, body: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(body)}".encode() + b"\0" + body).hexdigest()


def _git_write(gitdir: Path, kind: str, body: bytes) -> str:
    sha = _git_sha(kind, body)
    obj = gitdir / "objects" / sha[:2] / sha[2:]
    if not obj.exists():
        obj.parent.mkdir(parents=True, exist_ok=True)
        obj.write_bytes(zlib.compress(f"{kind} {len(body)}".encode() + b"\0" + body))
    return sha


def _git_write_tree(gitdir: Path, files: dict[str, bytes]) -> str:
    """Write a tree (recursively) for {relative path: content}; returns the tree sha."""
    blobs: dict[str, bytes] = {}
    subdirs: dict[str, dict[str, bytes]] = {}
    for rel, content in files.items():
        head, _, rest = rel.partition("/")
        if rest:
            subdirs.setdefault(head, {})[rest] = content
        else:
            blobs[head] = content
    entries = [(name, b"100644", _git_write(gitdir, "blob", data)) for name, data in blobs.items()]
    entries += [(name + "/", b"40000", _git_write_tree(gitdir, sub)) for name, sub in subdirs.items()]
    body = b"".join(mode + b" " + name.rstrip("/").encode() + b"\0" + bytes.fromhex(sha)
                    for name, mode, sha in sorted(entries))
    return _git_write(gitdir, "tree", body)


DEMO_COMMITS = [
    ("Initial import of the MCP platform configuration",
     {"README.md": b"# platform-config\n", "services.yml": b"services:\n  - filesystem\n"}),
    ("Add the git service",
     {"services.yml": b"services:\n  - filesystem\n  - git\n"}),
    ("Raise replicas to 2 for the gateway",
     {"replicas.yml": b"replicas: 2\n", "docs/ops.md": b"# Operations\n\nSee the runbook.\n"}),
]


def seed_git_repo(repo: Path) -> None:
    """Create a small genuine git repository (loose objects; ``git log`` can read it)."""
    gitdir = repo / ".git"
    for sub in ("objects", "refs/heads", "refs/tags"):
        (gitdir / sub).mkdir(parents=True, exist_ok=True)
    (gitdir / "HEAD").write_text("ref: refs/heads/main\n")
    (gitdir / "config").write_text("[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n")
    tree_files: dict[str, bytes] = {}
    parent = None
    when = 1763942400  # 2025-11-24T00:00:00Z
    for i, (message, changes) in enumerate(DEMO_COMMITS):
        tree_files.update(changes)
        tree = _git_write_tree(gitdir, tree_files)
        ident = f"Platform Bot <platform@mcp.example> {when + i * 86400} +0000"
        body = f"tree {tree}\n" + (f"parent {parent}\n" if parent else "")
        body += f"author {ident}\ncommitter {ident}\n\n{message}\n"
        parent = _git_write(gitdir, "commit", body.encode())
    (gitdir / "refs/heads/main").write_text(parent + "\n")
    for rel, content in tree_files.items():
        p = repo / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)


class GitRepo:
    """Reads HEAD, loose commits and trees of a repository with the stdlib only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.gitdir = path / ".git"
        if not (self.gitdir / "HEAD").is_file():
            raise ValueError(f"{path} is not a git repository")

    def _ref(self, name: str) -> str | None:
        loose = self.gitdir / name
        if loose.is_file():
            return loose.read_text().strip()
        packed = self.gitdir / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line and line[0] not in "#^" and line.split(" ", 1)[1:] == [name]:
                    return line.split(" ", 1)[0]
        return None

    def head(self) -> tuple[str | None, str | None]:
        """(branch or None when detached, commit sha or None on an empty repository)."""
        raw = (self.gitdir / "HEAD").read_text().strip()
        if raw.startswith("ref: "):
            ref = raw[5:]
            return ref.removeprefix("refs/heads/"), self._ref(ref)
        return None, raw

    def read(self, sha: str) -> tuple[str, bytes]:
        obj = self.gitdir / "objects" / sha[:2] / sha[2:]
        if not obj.is_file():
            raise LookupError(f"object {sha} is not a loose object (packed repositories are not supported)")
        raw = zlib.decompress(obj.read_bytes())
        header, _, body = raw.partition(b"\0")
        return header.split(b" ", 1)[0].decode(), body

    def commit(self, sha: str) -> dict[str, Any]:
        _, body = self.read(sha)
        head, _, message = body.decode("utf-8", errors="replace").partition("\n\n")
        info: dict[str, Any] = {"sha": sha, "parents": []}
        for line in head.splitlines():
            key, _, value = line.partition(" ")
            if key == "tree":
                info["tree"] = value
            elif key == "parent":
                info["parents"].append(value)
            elif key in ("author", "committer"):
                who, _, rest = value.rpartition("> ")
                stamp = rest.split(" ")[0]
                info[key] = who + ">"
                info[key + "_date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(stamp)))
        info["message"] = message.strip()
        return info

    def tree_files(self, sha: str, prefix: str = "") -> dict[str, str]:
        _, body = self.read(sha)
        out: dict[str, str] = {}
        i = 0
        while i < len(body):
            sp = body.index(b" ", i)
            nul = body.index(b"\0", sp)
            mode, name = body[i:sp], body[sp + 1:nul].decode("utf-8", errors="replace")
            child = body[nul + 1:nul + 21].hex()
            i = nul + 21
            if mode in (b"40000", b"040000"):
                out.update(self.tree_files(child, prefix + name + "/"))
            elif mode != b"160000":  # skip submodules
                out[prefix + name] = child
        return out

    def log(self, limit: int) -> list[dict[str, Any]]:
        _, sha = self.head()
        entries = []
        while sha and len(entries) < limit:
            c = self.commit(sha)
            entries.append({"sha": c["sha"], "short": c["sha"][:7], "author": c.get("author"),
                            "date": c.get("author_date"), "message": c["message"].splitlines()[0] if c["message"] else ""})
            sha = c["parents"][0] if c["parents"] else None
        return entries

    def status(self) -> dict[str, Any]:
        branch, sha = self.head()
        tracked = self.tree_files(self.commit(sha)["tree"]) if sha else {}
        work: dict[str, str] = {}
        for p in sorted(self.path.rglob("*")):
            rel = p.relative_to(self.path).as_posix()
            if rel == ".git" or rel.startswith(".git/") or not p.is_file() or p.is_symlink():
                continue
            work[rel] = _git_sha("blob", p.read_bytes())
        modified = sorted(f for f in work if f in tracked and tracked[f] != work[f])
        deleted = sorted(f for f in tracked if f not in work)
        untracked = sorted(f for f in work if f not in tracked)
        return {"branch": branch, "detached": branch is None, "head": sha, "modified": modified,
                "deleted": deleted, "untracked": untracked, "clean": not (modified or deleted or untracked),
                "note": "compared with HEAD (no index/staging area)"}


STATIC_LOG = [
    {"sha": "9f2c1d0e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e", "short": "9f2c1d0", "author": "Platform Bot <platform@mcp.example>",
     "date": "2025-11-26T00:00:00Z", "message": "Raise replicas to 2 for the gateway"},
    {"sha": "4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a", "short": "4b3a2f1", "author": "Platform Bot <platform@mcp.example>",
     "date": "2025-11-25T00:00:00Z", "message": "Add the git service"},
    {"sha": "1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f", "short": "1a0f9e8", "author": "Platform Bot <platform@mcp.example>",
     "date": "2025-11-24T00:00:00Z", "message": "Initial import of the MCP platform configuration"},
]


# --------------------------------------------------------------------------- server
def build_server(cfg: Config) -> MCPServer:
    server = MCPServer(name=cfg.name, version=cfg.version, log_level=cfg.log_level,
                       instructions=f"Lab {cfg.service} service of the MCP platform (version {cfg.version}).")

    @server.tool()
    def ping() -> dict[str, Any]:
        """Liveness check: answers pong with the service name and version."""
        return {"pong": True, "service": cfg.service, "version": cfg.version,
                "uptime_s": round(time.monotonic() - STARTED, 1)}

    if cfg.service == "filesystem":
        @server.tool()
        def list_files(path: str = ".") -> dict[str, Any]:
            """List the entries of a directory inside the service's data directory."""
            return list_files_in(cfg.data_dir, path)

        @server.tool()
        def read_file(path: str) -> str:
            """Read a UTF-8 text file (at most 1 MiB) inside the service's data directory."""
            return read_file_in(cfg.data_dir, path)

    elif cfg.service == "git":
        def repo() -> GitRepo | None:
            try:
                return GitRepo(cfg.git_repo)
            except ValueError:
                return None

        @server.tool()
        def git_status() -> dict[str, Any]:
            """Working tree status of the service's repository (branch, HEAD, changed files)."""
            r = repo()
            if r is None:
                return {"branch": "main", "head": STATIC_LOG[0]["sha"], "clean": True, "modified": [],
                        "deleted": [], "untracked": [], "note": f"no repository at {cfg.git_repo}: static data"}
            try:
                return {"repository": str(cfg.git_repo), **r.status()}
            except (LookupError, OSError, zlib.error) as exc:
                raise ToolError(f"cannot read repository {cfg.git_repo}: {exc}") from exc

        @server.tool()
        def git_log(limit: int = 10) -> dict[str, Any]:
            """The last `limit` commits on the current branch (first-parent history)."""
            limit = max(1, min(int(limit), 500))
            r = repo()
            if r is None:
                return {"repository": None, "commits": STATIC_LOG[:limit], "source": "static"}
            try:
                return {"repository": str(cfg.git_repo), "commits": r.log(limit), "source": "git"}
            except (LookupError, OSError, zlib.error) as exc:
                raise ToolError(f"cannot read repository {cfg.git_repo}: {exc}") from exc

    @server.custom_route("/health", methods=["GET"])
    async def health(request: Request) -> Response:
        ok, reason = health_state(cfg)
        if DRAINING:
            ok, reason = False, "draining: POST /drain was received, waiting to be stopped"
        body = {"status": "ok" if ok else ("draining" if DRAINING else "unhealthy"), "service": cfg.service, "version": cfg.version,
                "behaviour": cfg.behaviour, "uptime_s": round(time.monotonic() - STARTED, 1)}
        if not ok:
            body["reason"] = reason
        return JSONResponse(body, status_code=200 if ok else 503)

    @server.custom_route("/drain", methods=["POST"])
    async def drain(request: Request) -> Response:
        global DRAINING
        if not DRAINING:
            log.info("drain requested: /health answers 503 from now on")
        DRAINING = True
        return JSONResponse({"draining": True, "service": cfg.service, "version": cfg.version})

    @server.custom_route("/version", methods=["GET"])
    async def version(request: Request) -> Response:
        return JSONResponse({"service": cfg.service, "version": cfg.version})

    @server.custom_route("/slow", methods=["GET"])
    async def slow(request: Request) -> Response:
        try:
            ms = int(request.query_params.get("ms", "300"))
        except ValueError:
            return JSONResponse({"error": "ms must be an integer"}, status_code=400)
        ms = max(0, min(ms, 60000))
        deadline = time.monotonic() + ms / 1000
        while not STOPPING and time.monotonic() < deadline:
            await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        if STOPPING:
            return JSONResponse({"error": "server is shutting down"}, status_code=503)
        return JSONResponse({"slept_ms": ms, "service": cfg.service, "version": cfg.version})

    return server


class LabMiddleware:
    """Logs one line per HTTP request and, for ``broken-mcp``, fails every MCP request with a 500."""

    def __init__(self, app: Any, cfg: Config, mcp_path: str = "/mcp") -> None:
        self.app, self.cfg, self.mcp_path = app, cfg, mcp_path

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        is_mcp = path == self.mcp_path or path.startswith(self.mcp_path + "/")
        start = time.monotonic()
        status: dict[str, Any] = {"code": 0}

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            if is_mcp and self.cfg.behaviour == "broken-mcp":
                body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {
                    "code": -32603, "message": "internal error: MCP backend unavailable (lab behaviour broken-mcp)"}})
                await JSONResponse(json.loads(body), status_code=500)(scope, receive, send_wrapper)
            else:
                await self.app(scope, receive, send_wrapper)
        except asyncio.CancelledError:
            # Only happens when the server stops with this request still running (after the
            # graceful-shutdown grace period): end it quietly instead of logging a traceback.
            status["code"] = status["code"] or 499
            status["cancelled"] = True
        except Exception:
            status["code"] = status["code"] or 500
            raise
        finally:
            code = status["code"]
            level = logging.INFO
            if status.get("cancelled"):
                level = logging.INFO
            elif is_mcp and code >= 500:
                level = logging.ERROR
            elif path == "/health" and code == 503:
                level = logging.WARNING
            elif code >= 500 and not STOPPING:
                level = logging.WARNING
            client = scope.get("client") or ("-", 0)
            headers = dict(scope.get("headers") or [])
            host = headers.get(b"host", b"-").decode("latin-1")
            log.log(level, '%s %s %s "%s %s" %s %.1fms', self.cfg.name, client[0], host, scope.get("method"),
                    path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else ""),
                    code or "-", (time.monotonic() - start) * 1000)


def build_app(cfg: Config) -> Any:
    server = build_server(cfg)
    if cfg.allowed_hosts:
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True, allowed_hosts=cfg.allowed_hosts,
            allowed_origins=[f"http://{h}" for h in cfg.allowed_hosts] + [f"https://{h}" for h in cfg.allowed_hosts])
    else:
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    starlette_app = server.streamable_http_app(streamable_http_path="/mcp", stateless_http=cfg.stateless,
                                               json_response=cfg.json_response,
                                               transport_security=security, host=cfg.host)
    return LabMiddleware(starlette_app, cfg)


def prepare_data(cfg: Config) -> None:
    if not cfg.seed:
        return
    try:
        if cfg.service == "filesystem":
            if not cfg.data_dir.exists() or not any(cfg.data_dir.iterdir()):
                cfg.data_dir.mkdir(parents=True, exist_ok=True)
                seed_filesystem(cfg.data_dir)
                log.info("seeded sample files into %s", cfg.data_dir)
        elif cfg.service == "git" and not cfg.git_repo.exists():
            seed_git_repo(cfg.git_repo)
            log.info("created demo git repository at %s", cfg.git_repo)
    except OSError as exc:  # read-only or missing volume: serve what is there
        log.info("data dir %s not seeded (%s)", cfg.data_dir, exc)


class LabServer(uvicorn.Server):
    def handle_exit(self, sig: int, frame: Any) -> None:
        global STOPPING
        if not STOPPING:
            log.info("received %s, shutting down", signal.Signals(sig).name)
        STOPPING = True
        super().handle_exit(sig, frame)


def main() -> int:
    logging.basicConfig(stream=sys.stdout, level=os.environ.get("MCP_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s", datefmt="%Y-%m-%dT%H:%M:%S")
    try:
        cfg = Config()
    except ValueError as exc:
        log.error("bad configuration: %s", exc)
        return 2
    prepare_data(cfg)
    log.info("starting %s version %s behaviour %s on %s:%s/mcp (stateless=%s, json=%s)", cfg.name, cfg.version,
             cfg.behaviour + (f":{cfg.degrade_after:g}" if cfg.degrade_after is not None else ""),
             cfg.host, cfg.port, cfg.stateless, cfg.json_response)
    # uvicorn catches SIGTERM/SIGINT, shuts down, then re-raises the signal with the handler found
    # here: a no-op handler makes that re-raise harmless so the process exits 0 (also as PID 1).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    config = uvicorn.Config(build_app(cfg), host=cfg.host, port=cfg.port, log_level=cfg.log_level.lower(),
                            access_log=False, log_config=None, timeout_graceful_shutdown=2, lifespan="on", server_header=False)
    LabServer(config).run()
    log.info("%s stopped", cfg.name)
    return 0


if __name__ == "__main__":
    rc = main()
    # The server is down and the logs are written; skip interpreter teardown, which otherwise
    # waits more than a second on the SDK's idle worker threads before the process ends.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)
