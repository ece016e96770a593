"""Tests of the lab image sources under lab/images/ (service app, migrations, seed).

The service tests start the real app (official MCP SDK) as a subprocess on 127.0.0.1 (``lab_app``, ports 34000-34999)
and talk to it with the SDK client and plain HTTP. The migration tests need a PostgreSQL (``scratch_pg_server``): a
throwaway cluster started from the Debian PostgreSQL 15 binaries; without them they are skipped. Both fixtures are in tests/component/conftest.py.
"""
from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from support.lab_app import APP, IMAGES, MIGRATE, SEED, http_get


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


app = _load("lab_service_app", APP)
migrate = _load("lab_migrate", MIGRATE)


# ----------------------------------------------------------------------------- pure functions
def test_parse_behaviour():
    assert app.parse_behaviour("") == ("healthy", None)
    assert app.parse_behaviour("unhealthy") == ("unhealthy", None)
    assert app.parse_behaviour("broken-mcp") == ("broken-mcp", None)
    assert app.parse_behaviour("degrade-after:30") == ("degrade-after", 30.0)
    for bad in ("degrade-after:x", "degrade-after:-1", "sick"):
        with pytest.raises(ValueError):
            app.parse_behaviour(bad)


def test_config_rejects_unknown_service():
    with pytest.raises(ValueError, match="MCP_SERVICE"):
        app.Config({"MCP_SERVICE": "ftp"})
    cfg = app.Config({"MCP_SERVICE": "git", "MCP_VERSION": "1.3.0", "MCP_BEHAVIOUR": "degrade-after:5"})
    assert (cfg.name, cfg.version, cfg.data_dir, cfg.git_repo) == ("mcp-git", "1.3.0", Path("/data"), Path("/data/repo"))
    assert app.health_state(cfg, now=app.STARTED + 1)[0] is True
    assert app.health_state(cfg, now=app.STARTED + 6)[0] is False


def test_filesystem_confinement(tmp_path):
    app.seed_filesystem(tmp_path)
    (tmp_path.parent / "secret.txt").write_text("no")
    listing = app.list_files_in(tmp_path, ".")
    assert {"README.md", "docs", "reports"} <= {e["name"] for e in listing["entries"]}
    assert "Runbook" in app.read_file_in(tmp_path, "/docs/runbook.md")
    for bad in ("../secret.txt", "docs/../../secret.txt", "/etc/passwd/../../secret.txt"):
        with pytest.raises(app.ToolError):
            app.read_file_in(tmp_path, bad)
    (tmp_path / "escape").symlink_to(tmp_path.parent)
    with pytest.raises(app.ToolError):
        app.list_files_in(tmp_path, "escape")


def test_git_repo_reader(tmp_path):
    repo = tmp_path / "repo"
    app.seed_git_repo(repo)
    r = app.GitRepo(repo)
    log = r.log(10)
    assert [c["message"] for c in log] == [m for m, _unused in reversed(app.DEMO_COMMITS)]
    assert r.head() == ("main", log[0]["sha"])
    assert r.status()["clean"] is True
    (repo / "services.yml").write_text("changed\n")
    (repo / "README.md").unlink()
    (repo / "new.txt").write_text("x")
    st = r.status()
    assert (st["modified"], st["deleted"], st["untracked"], st["clean"]) == (
        ["services.yml"], ["README.md"], ["new.txt"], False)


def test_migration_targets():
    mapping = json.loads((IMAGES / "migrations" / "versions.json").read_text())
    assert migrate.target_for("1.0.0", mapping) == "002"
    assert migrate.target_for("1.1.0", mapping) == "003"
    assert migrate.target_for("1.1.5", mapping) == "003"
    assert migrate.target_for("1.2.0", mapping) == migrate.target_for("1.3.0", mapping) == "004"
    assert migrate.target_for("2.0.0", mapping) == "004"
    assert migrate.target_for("0.9.0", mapping) is None
    names = [n for _unused, n, _unused in migrate.load_migrations(IMAGES / "migrations")]
    assert names == sorted(names) and names[0].startswith("001_")
    assert set(mapping.values()) <= {n.split("_")[0] for n in names}


# ----------------------------------------------------------------------------- running server
async def _mcp_session(url, host=None, mode="auto", calls=()):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async with httpx2.AsyncClient(headers={"Host": host} if host else None, timeout=10) as hc:
        async with Client(streamable_http_client(url, http_client=hc), mode=mode) as c:
            tools = sorted(t.name for t in (await c.list_tools()).tools)
            results = {}
            for name, args in calls:
                res = await c.call_tool(name, args)
                results[name] = (res.is_error, res.structured_content)
            return c.server_info, tools, results


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_filesystem_service_over_gateway_host(lab_app, mode):
    s = lab_app(MCP_SERVICE="filesystem", MCP_VERSION="1.1.0")
    assert http_get(s.url + "/health")[0] == 200
    assert http_get(s.url + "/version") == (200, {"service": "filesystem", "version": "1.1.0"})
    info, tools, results = asyncio.run(_mcp_session(
        s.url + "/mcp", host="127.0.0.11:28080", mode=mode,
        calls=[("ping", {}), ("list_files", {"path": "docs"}), ("read_file", {"path": "../../etc/passwd"})]))
    assert (info.name, info.version) == ("mcp-filesystem", "1.1.0")
    assert tools == ["list_files", "ping", "read_file"]
    assert results["ping"] == (False, {"pong": True, "service": "filesystem", "version": "1.1.0",
                                       "uptime_s": results["ping"][1]["uptime_s"]})
    assert {e["name"] for e in results["list_files"][1]["entries"]} == {"architecture.txt", "runbook.md"}
    assert results["read_file"][0] is True
    assert s.lines("ERROR") == [] and s.lines("WARNING") == []
    assert any('127.0.0.11:28080 "POST /mcp" 200' in line for line in s.lines("INFO", wait_for="127.0.0.11:28080"))


def test_git_service_and_slow(lab_app):
    s = lab_app(MCP_SERVICE="git", MCP_VERSION="1.0.0")
    _unused, tools, results = asyncio.run(_mcp_session(s.url + "/mcp", calls=[("git_log", {"limit": 2}), ("git_status", {})]))
    assert tools == ["git_log", "git_status", "ping"]
    assert len(results["git_log"][1]["commits"]) == 2
    assert results["git_status"][1]["clean"] is True
    t = time.monotonic()
    assert http_get(s.url + "/slow?ms=300")[0] == 200
    assert time.monotonic() - t >= 0.3


def test_unhealthy_and_degrading(lab_app):
    bad = lab_app(MCP_SERVICE="filesystem", MCP_VERSION="1.2.0", MCP_BEHAVIOUR="unhealthy")
    deg = lab_app(MCP_SERVICE="git", MCP_VERSION="1.3.0", MCP_BEHAVIOUR="degrade-after:4")
    code, body = http_get(bad.url + "/health")
    assert code == 503 and body["status"] == "unhealthy"
    assert any('"GET /health" 503' in line for line in bad.lines("WARNING", wait_for="/health"))
    assert http_get(deg.url + "/health")[0] == 200
    deadline = time.monotonic() + 10
    while http_get(deg.url + "/health")[0] == 200 and time.monotonic() < deadline:
        time.sleep(0.25)
    assert http_get(deg.url + "/health")[0] == 503
    assert http_get(deg.url + "/version")[1]["version"] == "1.3.0"


def test_broken_mcp(lab_app):
    s = lab_app(MCP_SERVICE="filesystem", MCP_VERSION="1.1.1", MCP_BEHAVIOUR="broken-mcp")
    assert http_get(s.url + "/health")[0] == 200
    req = urllib.request.Request(
        s.url + "/mcp", method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"},
        data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}).encode())
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 500
    with pytest.raises(ExceptionGroup):  # the SDK client's task group re-raises the 500 from its transport
        asyncio.run(_mcp_session(s.url + "/mcp", mode="legacy"))
    assert any('"POST /mcp" 500' in line for line in s.lines("ERROR", wait_for="/mcp"))


def test_sigterm_exits_promptly(lab_app):
    s = lab_app(MCP_SERVICE="git", MCP_VERSION="1.0.0")
    t = time.monotonic()
    assert s.stop() == 0
    assert time.monotonic() - t < 3
    assert "stopped" in s.log.read_text()


def test_bad_configuration_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, str(APP)], env=dict(os.environ, MCP_SERVICE="nope"),
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2 and "MCP_SERVICE" in proc.stdout


# ----------------------------------------------------------------------------- migrations
@pytest.fixture
def scratch_db(scratch_pg_server):
    psycopg2 = pytest.importorskip("psycopg2")
    name = "mcp_lab_test_" + uuid.uuid4().hex[:10]
    admin = psycopg2.connect(scratch_pg_server + "/postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield scratch_pg_server + "/" + name
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _sql(url, query):
    import psycopg2
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(query)
        rows = cur.fetchall() if cur.description else None
    conn.close()
    return rows


def _migrate(url, *argv):
    proc = subprocess.run([sys.executable, str(MIGRATE), "--database-url", url, *argv],
                          capture_output=True, text=True, timeout=60, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def test_seed_is_idempotent(scratch_db):
    seed = SEED.read_text()
    _sql(scratch_db, seed)
    counts = "SELECT (SELECT count(*) FROM tools), (SELECT count(*) FROM sessions), (SELECT count(*) FROM audit_log)"
    first = _sql(scratch_db, counts)
    assert first[0][0] >= 20 and first[0][1] >= 300 and first[0][2] >= 300
    _sql(scratch_db, seed)
    assert _sql(scratch_db, counts) == first


def test_migrations_on_seeded_database(scratch_db):
    _sql(scratch_db, SEED.read_text())
    rc, out, err = _migrate(scratch_db, "up", "--version", "1.0.0")
    assert rc == 0, err
    assert "applied 001_baseline" in out and "applied 002_tools_enabled" in out and "003" not in out.split("done:")[0]
    rc, out, err = _migrate(scratch_db, "up", "--version", "1.0.0", "--json")
    assert rc == 0 and json.loads(out)["changed"] is False
    rc, out, _unused = _migrate(scratch_db, "up", "--version", "1.1.0", "--json")
    assert json.loads(out)["applied"] == ["003_session_end_and_indexes"]
    rc, out, _unused = _migrate(scratch_db, "up", "--version", "1.3.0", "--json")
    assert json.loads(out)["applied"] == ["004_tool_invocations"]
    assert _sql(scratch_db, "SELECT version FROM schema_migrations ORDER BY 1") == [("001",), ("002",), ("003",), ("004",)]
    assert _sql(scratch_db, "SELECT count(*) FROM sessions WHERE ended_at IS NULL") == [(0,)]
    assert _sql(scratch_db, "SELECT count(*) FROM tools WHERE enabled") == _sql(scratch_db, "SELECT count(*) FROM tools")
    assert _sql(scratch_db, "SELECT to_regclass('tool_invocations') IS NOT NULL") == [(True,)]
    # after a rollback to 1.1.0 the database is ahead: reported, untouched
    rc, out, _unused = _migrate(scratch_db, "status", "--version", "1.1.0", "--json")
    status = json.loads(out)
    assert status["up_to_date"] is True
    assert [m["state"] for m in status["migrations"]][-1] == "applied (beyond target)"
    rc, out, _unused = _migrate(scratch_db, "up", "--version", "1.1.0", "--json")
    assert json.loads(out)["ahead"] == ["004"] and json.loads(out)["changed"] is False


def test_failing_migration_rolls_back(scratch_db, tmp_path):
    shutil.copytree(IMAGES / "migrations" / "sql", tmp_path / "sql")
    (tmp_path / "sql" / "005_broken.sql").write_text(
        "ALTER TABLE tools ADD COLUMN half_done int;\nSELECT no_such_function();\n")
    (tmp_path / "versions.json").write_text(json.dumps({"1.0.0": "002", "9.0.0": "005"}))
    rc, out, err = _migrate(scratch_db, "--dir", str(tmp_path), "up", "--version", "9.0.0")
    assert rc == 1 and "FAILED  005_broken" in out
    assert _sql(scratch_db, "SELECT max(version) FROM schema_migrations") == [("004",)]
    assert _sql(scratch_db, "SELECT count(*) FROM information_schema.columns "
                            "WHERE table_name = 'tools' AND column_name = 'half_done'") == [(0,)]
    rc, _unused, err = _migrate(scratch_db, "--dir", str(tmp_path), "up", "--version", "0.1.0")
    assert rc == 2 and "older than every version" in err
