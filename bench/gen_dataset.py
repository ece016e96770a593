#!/usr/bin/env python3
"""Make the backup benchmark's dataset: a scratch database and a scratch folder nobody tuned for.

* database ``mcp_bench`` on the lab's PostgreSQL primary (its address from inventories/lab, superuser ``postgres`` with
  lab_pg_admin_password from lab.yml; or ``--pg-host``/``--pg-port`` for a scratch server): ``events`` (random JSON
  payloads, random words, timestamps) and ``documents`` (longer random-word bodies, tag arrays), with indexes, grown
  until ``pg_database_size`` reaches ``--size-mb``. Rows come from Python's random (words drawn from a random
  4000-word vocabulary) through COPY, from the controller across the lab's bridge.
* folder ``/var/lib/mcp/bench/files`` on an MCP host (``--host``, default the first one; ``--host-dir``), written from
  the controller through the lab's bind mount of the host's /var/lib/mcp: ``--files-mb`` of mixed files - many small
  ones (1-64 KiB) and some large ones (8-48 MiB), half random bytes (incompressible) and half random-word text / log
  lines (compressible), in nested folders with a few modes. Outside /var/lib/mcp/data, so no service sees them.

    .venv/bin/python bench/gen_dataset.py                 # 800 MB + 800 MB
    .venv/bin/python bench/gen_dataset.py --size-mb 50    # a quick try
    .venv/bin/python bench/gen_dataset.py --drop          # remove both
"""
import argparse
import io
import json
import os
import random
import shutil
import string
import sys
import time

import psycopg2
from benchlab import CFG, HOSTS, MCP_HOSTS, PRIMARY, host_path

MIB = 1024 * 1024
HOST_DIR = "/var/lib/mcp/bench/files"


def vocabulary(rng, n=4000):
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 11))))
    return sorted(words)


def connect(args, dbname):
    # the scratch database is ours even while the platform's database is in a read-only maintenance window
    conn = psycopg2.connect(host=args.pg_host, port=args.pg_port, user=args.pg_user, password=args.pg_password, dbname=dbname,
                            connect_timeout=10, options="-c default_transaction_read_only=off")
    conn.autocommit = True
    return conn


def admin(args, statement):
    conn = connect(args, "postgres")
    try:
        conn.cursor().execute(statement)
    finally:
        conn.close()


def drop_db(args):
    admin(args, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % args.db)


def make_db(args, rng):
    drop_db(args)
    admin(args, 'CREATE DATABASE "%s"' % args.db)
    conn = connect(args, args.db)
    cur = conn.cursor()
    vocab = vocabulary(rng)
    cur.execute("""
        CREATE TABLE events (
            id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, kind text NOT NULL, host text NOT NULL,
            user_id integer, payload jsonb NOT NULL, message text);
        CREATE TABLE documents (
            id bigserial PRIMARY KEY, owner_id integer NOT NULL, title text NOT NULL, body text NOT NULL,
            tags text[], updated_at timestamptz NOT NULL);
    """)
    kinds = ("login", "logout", "tool_call", "error", "sync", "upload", "download", "audit")
    target = args.size_mb * MIB
    t0 = time.time()
    now = time.time()

    def stamp():
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now - rng.random() * 400 * 86400)) + ".%06d+00" % rng.randint(0, 999999)

    while True:
        cur.execute("SELECT pg_database_size(current_database())")
        size = cur.fetchone()[0]
        sys.stderr.write("\r  database %s: %6.0f / %d MB" % (args.db, size / MIB, args.size_mb))
        if size >= target:
            break
        events, docs = [], []
        for dummy in range(20000):
            payload = json.dumps({"latency_ms": round(rng.random() * 3000, 3), "ok": rng.random() > 0.07,
                                  "trace_id": "%032x" % rng.getrandbits(128), "bytes": rng.randint(0, 10 ** 7),
                                  "args": {"path": "/" + "/".join(rng.choices(vocab, k=rng.randint(1, 5))), "depth": rng.randint(0, 8)},
                                  "labels": [rng.choice(vocab), rng.randint(0, 999), rng.random()]})
            events.append("%s\t%s\tmcp-%d\t%d\t%s\t%s\n" % (stamp(), rng.choice(kinds), rng.randint(1, 300), rng.randint(1, 200000),
                                                          payload, " ".join(rng.choices(vocab, k=rng.randint(5, 45)))))
        for dummy in range(5000):
            docs.append("%d\t%s\t%s\t{%s,%s}\t%s\n" % (rng.randint(1, 50000), " ".join(rng.choices(vocab, k=rng.randint(3, 9))),
                                                    " ".join(rng.choices(vocab, k=rng.randint(40, 300))), rng.choice(vocab),
                                                    rng.choice(vocab), stamp()))
        cur.copy_expert("COPY events (created_at, kind, host, user_id, payload, message) FROM STDIN",
                        io.BytesIO("".join(events).encode("ascii")))
        cur.copy_expert("COPY documents (owner_id, title, body, tags, updated_at) FROM STDIN", io.BytesIO("".join(docs).encode("ascii")))
    cur.execute("CREATE INDEX ON events (created_at); CREATE INDEX ON events (user_id); CREATE INDEX ON documents (owner_id)")
    cur.execute("VACUUM ANALYZE")
    cur.execute("SELECT pg_database_size(current_database()), (SELECT count(*) FROM events), (SELECT count(*) FROM documents)")
    size, events, docs = cur.fetchone()
    conn.close()
    sys.stderr.write("\r  database %s: %.0f MB, %d events, %d documents (%.0f s)\n" % (args.db, size / MIB, events, docs, time.time() - t0))
    return size


def text_block(rng, vocab, size):
    out, total = [], 0
    while total < size:
        if rng.random() < 0.5:  # log line
            line = "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s host=mcp-%d user=%d latency=%.3f msg=\"%s\"\n" % (
                rng.randint(2023, 2026), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59),
                rng.randint(0, 59), rng.randint(0, 999), rng.choice(("INFO", "WARN", "ERROR", "DEBUG")), rng.randint(1, 300),
                rng.randint(1, 200000), rng.random() * 3000, " ".join(rng.choices(vocab, k=rng.randint(4, 30))))
        else:  # prose
            line = " ".join(rng.choices(vocab, k=rng.randint(10, 200))) + ".\n"
        out.append(line)
        total += len(line)
    return "".join(out).encode("ascii")[:size]


def write_file(path, rng, vocab, size, random_bytes):
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            n = min(left, 4 * MIB)
            fh.write(os.urandom(n) if random_bytes else text_block(rng, vocab, n))
            left -= n


def make_files(args, rng):
    root = args.dir
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    vocab = vocabulary(rng)
    target = args.files_mb * MIB
    small_share = 0.35
    t0 = time.time()
    total = count = 0
    # many small files in nested folders
    while total < target * small_share:
        folder = os.path.join(root, "small", "d%02d" % rng.randint(0, 39), "e%02d" % rng.randint(0, 19))
        os.makedirs(folder, exist_ok=True)
        size = rng.randint(1024, 64 * 1024)
        path = os.path.join(folder, "f%06d.%s" % (count, rng.choice(("json", "txt", "bin", "log", "md"))))
        write_file(path, rng, vocab, size, random_bytes=rng.random() < 0.5)
        os.chmod(path, rng.choice((0o644, 0o640, 0o600, 0o755)))
        total += size
        count += 1
    # some large ones
    os.makedirs(os.path.join(root, "large"), exist_ok=True)
    while total < target:
        size = min(rng.randint(8, 48) * MIB, max(target - total, MIB))
        random_bytes = rng.random() < 0.5
        path = os.path.join(root, "large", "%s-%04d.%s" % ("blob" if random_bytes else "log", count, "bin" if random_bytes else "log"))
        write_file(path, rng, vocab, size, random_bytes)
        total += size
        count += 1
    sys.stderr.write("  files %s: %.0f MB in %d files (%.0f s)\n" % (root, total / MIB, count, time.time() - t0))
    return total, count


def parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=800, help="database size (pg_database_size), default 800")
    ap.add_argument("--files-mb", type=int, help="bytes of files (default: --size-mb)")
    ap.add_argument("--pg-host", default=HOSTS[PRIMARY], help="default: the inventory's primary, %s" % HOSTS[PRIMARY])
    ap.add_argument("--pg-port", type=int, default=5432)
    ap.add_argument("--pg-user", default="postgres")
    ap.add_argument("--pg-password", default=os.environ.get("PGPASSWORD", CFG["lab_pg_admin_password"]),
                    help="default: $PGPASSWORD, else lab_pg_admin_password")
    ap.add_argument("--db", default="mcp_bench")
    ap.add_argument("--host", default=MCP_HOSTS[0], choices=MCP_HOSTS, help="the MCP host the files are made on")
    ap.add_argument("--host-dir", default=HOST_DIR, help="the folder on that host (under /var/lib/mcp), default " + HOST_DIR)
    ap.add_argument("--seed", type=int, help="random seed for the files (default: random)")
    ap.add_argument("--drop", action="store_true", help="remove the database and the folder, then exit")
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    args.dir = host_path(args.host, args.host_dir)  # where the controller writes the host's folder
    if args.files_mb is None:
        args.files_mb = args.size_mb
    if args.drop:
        drop_db(args)
        shutil.rmtree(args.dir, ignore_errors=True)
        return 0
    rng = random.Random(args.seed)
    make_db(args, rng)
    make_files(args, rng)
    return 0


if __name__ == "__main__":
    sys.exit(main())
