#!/usr/bin/env python3
"""Database migrations of the MCP platform (lab image ``mcp-platform/migrations:<version>``).

    migrate up [--version X] [--to NNN] [--dry-run] [--json]
    migrate status [--version X] [--json]

Connects to ``$DATABASE_URL`` (libpq URI or key=value string). Migrations are ``sql/NNN_name.sql``
files applied in order, each in its own transaction together with its row in
``schema_migrations(version text primary key, applied_at timestamptz)``; applied ones are skipped,
so ``up`` is idempotent. ``versions.json`` maps a platform version to the highest migration it
needs; the image's version (``$MCP_VERSION``, or ``--version``) picks the target: the entry of the
highest listed version not above it. There are no down migrations: a database ahead of the target
(after a rollback) is reported, not changed.

Exit status: 0 done (or nothing to do), 1 a migration or the database failed, 2 bad usage/config.
A session advisory lock keeps two runners (two hosts updating at once) from racing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCK_KEY = 0x4D4350_4D4947  # "MCP" "MIG": pg_advisory_lock key shared by every runner
LOCK_WAIT_S = 120
NAME_RE = re.compile(r"^(\d{3,})_([A-Za-z0-9_]+)\.sql$")

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
)"""


class UsageError(Exception):
    pass


def parse_version(text: str) -> tuple[int, ...]:
    m = re.match(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", (text or "").strip())
    if not m:
        raise UsageError(f"not a version: {text!r}")
    return tuple(int(x or 0) for x in m.groups())


def load_migrations(directory: Path) -> list[tuple[str, str, Path]]:
    """[(number, name, path)] sorted by number; refuses duplicate numbers."""
    found: dict[str, tuple[str, str, Path]] = {}
    for p in sorted((directory / "sql").glob("*.sql")):
        m = NAME_RE.match(p.name)
        if not m:
            raise UsageError(f"migration file name {p.name!r} is not NNN_name.sql")
        if m.group(1) in found:
            raise UsageError(f"two migrations numbered {m.group(1)}: {found[m.group(1)][2].name}, {p.name}")
        found[m.group(1)] = (m.group(1), p.stem, p)
    return [found[k] for k in sorted(found, key=int)]


def target_for(version: str, mapping: dict[str, str]) -> str | None:
    """Highest migration wanted by the highest mapped version <= ``version`` (None: nothing)."""
    want = parse_version(version)
    best = None
    for v, mig in mapping.items():
        if parse_version(v) <= want and (best is None or parse_version(v) > parse_version(best)):
            best = v
    return mapping[best] if best else None


def plan(migrations, applied: dict[str, str], target: str | None) -> list[dict]:
    rows = []
    for number, name, path in migrations:
        wanted = target is not None and int(number) <= int(target)
        if number in applied:
            state = "applied" if wanted else "applied (beyond target)"
        else:
            state = "pending" if wanted else "not in this version"
        rows.append({"version": number, "name": name, "state": state, "applied_at": applied.get(number),
                     "wanted": wanted, "path": str(path)})
    known = {n for n, _, _ in migrations}
    for number in sorted(set(applied) - known, key=lambda x: int(x) if x.isdigit() else 0):
        rows.append({"version": number, "name": None, "state": "applied (unknown to this image)",
                     "applied_at": applied[number], "wanted": False, "path": None})
    return rows


def connect(url: str):
    try:
        import psycopg2  # noqa: PLC0415  (from the image's pydeps)
    except ImportError:
        raise UsageError("psycopg2 is not importable (expected in PYTHONPATH, e.g. /opt/pydeps)")
    return psycopg2.connect(url, connect_timeout=10, application_name="mcp-platform-migrate")


def applied_versions(conn) -> dict[str, str]:
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
        if not cur.fetchone()[0]:
            conn.rollback()
            return {}
        cur.execute("SELECT version, applied_at FROM schema_migrations ORDER BY version")
        rows = {v: at.isoformat() for v, at in cur.fetchall()}
    conn.rollback()
    return rows


def lock(conn) -> None:
    conn.autocommit = True
    deadline = time.monotonic() + LOCK_WAIT_S
    with conn.cursor() as cur:
        while True:
            cur.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
            if cur.fetchone()[0]:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"another migration run holds the lock for more than {LOCK_WAIT_S}s")
            time.sleep(0.5)
    conn.autocommit = False


def cmd_up(args, migrations, target, out) -> int:
    conn = connect(args.database_url)
    summary = {"command": "up", "version": args.version, "target": target, "applied": [], "skipped": [],
               "ahead": [], "dry_run": args.dry_run}
    try:
        lock(conn)
        with conn.cursor() as cur:
            cur.execute(CREATE_TABLE)
        conn.commit()
        applied = applied_versions(conn)
        for row in plan(migrations, applied, target):
            if row["state"] == "applied":
                summary["skipped"].append(row["name"])
                out(f"skip    {row['name']} (applied {row['applied_at']})")
            elif row["state"] == "pending":
                if args.dry_run:
                    summary["applied"].append(row["name"])
                    out(f"would apply {row['name']}")
                    continue
                sql = Path(row["path"]).read_text(encoding="utf-8")
                started = time.monotonic()
                try:
                    with conn.cursor() as cur:
                        cur.execute(sql)
                        cur.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (%s, now())",
                                    (row["version"],))
                    conn.commit()
                except Exception as exc:
                    conn.rollback()
                    summary["failed"] = {"name": row["name"], "error": str(exc).strip()}
                    out(f"FAILED  {row['name']}: {str(exc).strip()} (rolled back)")
                    return 1
                summary["applied"].append(row["name"])
                out(f"applied {row['name']} ({time.monotonic() - started:.2f}s)")
            elif row["state"].startswith("applied ("):
                summary["ahead"].append(row["version"])
        if summary["ahead"]:
            out(f"note    database is ahead of version {args.version} (target {target}): "
                f"{', '.join(summary['ahead'])} stay applied (no down migrations)")
        if args.dry_run:
            out(f"dry run: {len(summary['applied'])} migration(s) would be applied")
        else:
            out(f"done: {len(summary['applied'])} applied, {len(summary['skipped'])} already applied, "
                f"target {target or 'none'} for version {args.version}")
        return 0
    finally:
        summary["changed"] = bool(summary["applied"]) and not args.dry_run
        if args.json:
            print(json.dumps(summary))
        conn.close()


def cmd_status(args, migrations, target, out) -> int:
    conn = connect(args.database_url)
    try:
        rows = plan(migrations, applied_versions(conn), target)
    finally:
        conn.close()
    pending = [r["name"] for r in rows if r["state"] == "pending"]
    if args.json:
        print(json.dumps({"command": "status", "version": args.version, "target": target,
                          "migrations": [{k: v for k, v in r.items() if k != "path"} for r in rows],
                          "pending": pending, "up_to_date": not pending}))
        return 0
    out(f"version {args.version}: target migration {target or 'none'}")
    for r in rows:
        out(f"{r['version']:>5}  {(r['name'] or '?'):<40} {r['state']}"
            + (f"  {r['applied_at']}" if r["applied_at"] else ""))
    out("up to date" if not pending else f"{len(pending)} pending: {', '.join(pending)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="migrate", description="MCP platform database migrations")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="libpq URI (default: $DATABASE_URL)")
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("MIGRATIONS_DIR") or HERE),
                        help="folder holding sql/ and versions.json")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "status"):
        p = sub.add_parser(name)
        p.add_argument("--version", default=os.environ.get("MCP_VERSION") or os.environ.get("VERSION"),
                       help="platform version to migrate to (default: $MCP_VERSION, the image's version)")
        p.add_argument("--to", help="highest migration number to apply (overrides the version mapping)")
        p.add_argument("--json", action="store_true", help="also print a JSON summary as the last line")
        if name == "up":
            p.add_argument("--dry-run", action="store_true", help="show what would be applied")
    args = parser.parse_args(argv)
    # With --json, human lines go to stderr so stdout is just the JSON document.
    stream = sys.stderr if args.json else sys.stdout

    def out(line: str) -> None:
        print(line, file=stream, flush=True)

    try:
        if not args.database_url:
            raise UsageError("DATABASE_URL is not set (or pass --database-url)")
        migrations = load_migrations(args.dir)
        mapping = json.loads((args.dir / "versions.json").read_text(encoding="utf-8"))
        if args.to:
            if not args.to.isdigit():
                raise UsageError(f"--to must be a migration number like 003; got {args.to!r}")
            target = args.to.zfill(3)
        else:
            if not args.version:
                raise UsageError("no version: set MCP_VERSION or pass --version")
            target = target_for(args.version, mapping)
            if target is None:
                raise UsageError(f"version {args.version} is older than every version in versions.json")
        if target is not None and target not in {n for n, _, _ in migrations}:
            raise UsageError(f"target migration {target} has no sql file")
        if args.command == "up":
            return cmd_up(args, migrations, target, out)
        return cmd_status(args, migrations, target, out)
    except UsageError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # database unreachable, lock timeout, ...
        print(f"migrate: {type(exc).__name__}: {str(exc).strip()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
