#!/usr/bin/env python3
"""Backup and restore: the manual's backup.sh / restore.sh steps against mcp.platform.mcp_backup, same data, same S3.

    .venv/bin/python bench/backup_restore.py                  # 800 MB database + 800 MB of files
    .venv/bin/python bench/backup_restore.py --size-mb 50     # a quick try
    .venv/bin/python bench/backup_restore.py --reuse          # keep an existing dataset (bench/gen_dataset.py)
    .venv/bin/python bench/backup_restore.py --private-pg     # a scratch PostgreSQL on a PG node, not the lab primary

Needs the lab of real hosts (make lab-up) and the installed collection (make install). Everything happens on one MCP
host (``--host``, default the first), where the manual's backup.sh runs in production (it reads /etc/mcp and the
volumes, and dumps the database over the network: ``pg_dump -h postgres``):

dataset  bench/gen_dataset.py: database ``mcp_bench`` on the lab primary (``--private-pg``: on a throwaway PostgreSQL
         15 on ``--pg-node`` port ``--pg-port``, initdb defaults, so the lab's replica is not flooded), files under
         /var/lib/mcp/bench/files on the host (outside /var/lib/mcp/data: no service sees them).
backup
  manual   the steps of the manual's backup.sh, one by one, as root on the host over SSH (the lab's SSH user with sudo,
           one SSH connection kept open, as Ansible keeps one): ``pg_dump > postgres.sql`` (across the bridge to the
           PG node; password from a .pgpass file), ``cp -r /etc/mcp``, ``tar -czf volumes.tar.gz``, manifest,
           ``tar -czf`` of the whole folder, upload, ``rm -rf``. The AWS CLI is not installed on the hosts, so
           ``aws s3 cp`` / ``aws s3 ls`` are stood in for by boto3's ``upload_file`` / ``head_object`` in the node venv
           on the host (the same managed multipart transfer the CLI uses), to the lab's S3 (moto) on the infra address.
  ours     ``ansible <host> -i inventories/lab -m mcp.platform.mcp_backup`` from the installed collection over SSH
           (components postgres + config + volumes; streamed, zstd, SHA-256, S3 multipart, manifest last), Ansible's
           own start-up and SSH included.
  pg_dump  alone on the host to /dev/null: plain SQL (the manual's command) and custom format without compression
           (what ours runs).
restore
  manual   restore.sh's steps on the host: download (boto3 ``download_file`` for ``aws s3 cp``), ``tar -xzf`` the set,
           ``createdb`` + ``psql < postgres.sql`` into a fresh database, ``tar -xzf volumes.tar.gz`` into a fresh folder.
  ours     ``mcp_backup`` state=restored into a fresh database (``pg_restore --jobs``) and a fresh folder on the host.

Prints a table and the ratios (targets from the issue: backup <= 1/5 of the manual, <= 2x pg_dump alone; restore <= 1/2),
the peak extra disk on the host and the peak RSS of the module process there (the controller sees the host's
folders through the lab's bind mount of /var/lib/mcp and its processes in its PID namespace). Asserts nothing.
Removes everything it made (scratch databases, folders, objects, the scratch server; the dataset too unless
--keep-dataset).

Old lab (one machine, everything local), from the git log (96ab307): mcp_backup took 19.6 s at zstd level 3 and
14.6 s at level 1 (+13% stored) on 800 MB + 800 MB.
"""
import argparse
import json
import os
import secrets
import shlex
import shutil
import subprocess
import threading
import time

import gen_dataset
import psycopg2
from benchlab import (
    CFG,
    HOSTS,
    INVENTORY,
    MCP_HOSTS,
    NODE_PYTHON,
    PG_BIN,
    PG_NODES,
    PRIMARY,
    ROOT,
    S3_ENDPOINT,
    SSH,
    VENV_BIN,
    ansible_env,
    host_path,
    lab_up,
    labhosts,
    pg_dsn,
    s3_client,
)

MIB = 1024.0 * 1024.0
BENCH_DIR = "/var/lib/mcp/bench"  # on the MCP host


def du(path):
    total = 0
    for dirpath, dummy, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total


def rss_of(pid):
    try:
        with open("/proc/%d/status" % pid) as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def processes(pid_ns):
    """(pid, ppid, cmdline) of every process in one PID namespace (a lab host's), as the controller sees them."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink("/proc/%s/ns/pid" % name) != pid_ns:
                    continue
                with open("/proc/%s/cmdline" % name, "rb") as fh:
                    cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
                with open("/proc/%s/stat" % name) as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                out.append((int(name), ppid, cmd))
            except (OSError, ValueError, IndexError):
                pass
    return out


class Sampler(threading.Thread):
    """Samples, every 0.2 s: bytes under the watched folders (controller paths of a host's folders), and the RSS of the
    module process on the host and of its children. The module process is the node venv's Python that Ansible's
    become wrapper (``/bin/sh -c 'echo BECOME-SUCCESS-...; <python>'``) started (pipelining: no AnsiballZ file)."""

    def __init__(self, folders, host=None):
        super().__init__(daemon=True)
        self.folders = folders
        self.pid_ns = os.readlink("/proc/%d/ns/pid" % labhosts.init_pid(host)) if host else None
        self.stop = threading.Event()
        self.peak_disk = 0
        self.peak_module_rss = 0
        self.peak_children_rss = 0

    def run(self):
        while not self.stop.is_set():
            self.peak_disk = max(self.peak_disk, sum(du(f) for f in self.folders if os.path.exists(f)))
            if self.pid_ns:
                procs = processes(self.pid_ns)
                wrappers = set(p[0] for p in procs if "BECOME-SUCCESS-" in p[2] and p[2].startswith("/bin/sh -c echo"))
                mods = [p for p in procs if p[1] in wrappers and p[2].startswith(NODE_PYTHON)]
                if mods:
                    self.peak_module_rss = max(self.peak_module_rss, max(rss_of(p[0]) for p in mods))
                    ids = set(p[0] for p in mods)
                    kids = [p for p in procs if p[1] in ids]
                    self.peak_children_rss = max(self.peak_children_rss, sum(rss_of(p[0]) for p in kids))
            self.stop.wait(0.2)

    def finish(self):
        self.stop.set()
        self.join()
        return self


class Bench:
    def __init__(self, args):
        self.args = args
        self.host = args.host
        self.bucket = CFG["lab_s3_bucket"]
        self.s3 = s3_client()
        self.ssh = SSH()
        self.token = secrets.token_hex(4)
        self.prefix = "bench/%s" % self.token
        # on the host (host_path(): where the controller sees the same folder)
        self.files = args.host_dir
        self.work = "%s/work-%s" % (BENCH_DIR, self.token)
        self.tmp = "%s/tmp-ours-%s" % (BENCH_DIR, self.token)
        self.pgpass = "%s/pgpass-%s" % (BENCH_DIR, self.token)
        self.config_dir = "/etc/mcp"
        self.pg_node = args.pg_node
        self.pg_port = args.pg_port if args.private_pg else 5432
        self.pg_host = HOSTS[self.pg_node]
        self.pg = "-h %s -p %d -U postgres" % (self.pg_host, self.pg_port)
        self.results = {}
        self.scratch_dbs = ["mcp_bench_restore_manual", "mcp_bench_restore_ours"]
        self.private_dir = "/var/lib/postgresql/bench-%d" % self.pg_port
        self.private_started = False

    # ------------------------------------------------------------------ helpers

    def local(self, path):
        return host_path(self.host, path)

    def sh(self, script, input=None):
        """A shell snippet as root on the host, over SSH; the .pgpass file and PGOPTIONS set as a cron job would."""
        env = "export PGPASSFILE=%s PGOPTIONS='-c default_transaction_read_only=off'; " % self.pgpass
        return self.ssh.run(self.host, ["sh", "-c", env + script], input=input, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def timed(self, script, input=None):
        t0 = time.time()
        self.sh(script, input=input)
        return time.time() - t0

    def s3_on_host(self, code, *argv):
        """boto3 in the node venv on the host: the stand-in for the AWS CLI there (client ``c``, arguments ``a``)."""
        prog = ("import boto3, sys; a = sys.argv[1:]; c = boto3.client('s3', endpoint_url=%r, region_name='us-east-1', "
                "aws_access_key_id=%r, aws_secret_access_key=%r); " % (S3_ENDPOINT, CFG["lab_s3_access_key"], CFG["lab_s3_secret_key"]))
        return "%s -c %s %s" % (NODE_PYTHON, shlex.quote(prog + code), " ".join(shlex.quote(x) for x in argv))

    def admin(self, sql, db="postgres"):
        conn = psycopg2.connect(pg_dsn(self.pg_node, port=self.pg_port, dbname=db), options="-c default_transaction_read_only=off")
        conn.autocommit = True
        try:
            cur = conn.cursor()
            cur.execute(sql)
            return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def counts(self, db):
        return dict(self.admin("SELECT 'events', count(*) FROM events UNION ALL SELECT 'documents', count(*) FROM documents", db))

    def ansible_module(self, args):
        env = ansible_env({"ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"})
        argv = [os.path.join(VENV_BIN, "ansible"), self.host, "-i", INVENTORY, "-m", "mcp.platform.mcp_backup", "-a", json.dumps(args)]
        sampler = Sampler([self.local(self.tmp)], host=self.host)
        sampler.start()
        t0 = time.time()
        res = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
        seconds = time.time() - t0
        sampler.finish()
        try:
            out = json.loads(res.stdout[res.stdout.index("{"):])["plays"][0]["tasks"][0]["hosts"][self.host]
        except (ValueError, KeyError, IndexError):
            raise SystemExit("mcp_backup failed (rc %d):\n%s\n%s" % (res.returncode, res.stdout[-3000:], res.stderr[-3000:]))
        if out.get("failed") or out.get("unreachable"):
            raise SystemExit("mcp_backup failed: %s" % out.get("msg"))
        return seconds, out, sampler

    def target_args(self):
        return {"s3_endpoint_url": S3_ENDPOINT, "s3_bucket": self.bucket, "s3_prefix": self.prefix,
                "s3_access_key": CFG["lab_s3_access_key"], "s3_secret_key": CFG["lab_s3_secret_key"],
                "part_size_mb": self.args.part_size_mb, "max_in_flight": self.args.max_in_flight}

    def pg_args(self, dbname):
        return {"postgres_host": self.pg_host, "postgres_port": self.pg_port, "postgres_user": "postgres",
                "postgres_password": CFG["lab_pg_admin_password"], "postgres_dbname": dbname}

    # ------------------------------------------------------------------ steps

    def prepare(self):
        # the folders on the host, and root's .pgpass for the manual's pg_dump/psql (the manual's `pg_dump -h postgres -U mcp`
        # reads its password from one too)
        self.sh("mkdir -p %s %s && umask 077 && cat > %s" % (self.work, self.tmp, self.pgpass),
                input=("%s:%d:*:postgres:%s\n" % (self.pg_host, self.pg_port, CFG["lab_pg_admin_password"])).encode())

    def dataset(self):
        if self.args.reuse:
            return
        gen_dataset.main(self.dataset_args() + ["--size-mb", str(self.args.size_mb), "--files-mb", str(self.args.files_mb or self.args.size_mb)])

    def dataset_args(self):
        return ["--pg-host", self.pg_host, "--pg-port", str(self.pg_port), "--host", self.host, "--host-dir", self.files]

    def pg_dump_alone(self):
        self.results["pg_dump_plain"] = self.timed("pg_dump %s -d mcp_bench > /dev/null" % self.pg)
        self.results["pg_dump_custom"] = self.timed("pg_dump %s -Fc -Z0 -d mcp_bench > /dev/null" % self.pg)

    def manual_backup(self):
        stamp = time.strftime("%Y%m%d_%H%M%S")
        name = "mcp-%s" % stamp
        backup_dir = "%s/%s" % (self.work, name)
        archive = backup_dir + ".tar.gz"
        key = "%s/manual/%s.tar.gz" % (self.prefix, name)
        sampler = Sampler([self.local(self.work)])
        sampler.start()
        steps = {}
        t0 = time.time()
        self.sh("mkdir -p %s" % backup_dir)
        steps["pg_dump > postgres.sql"] = self.timed("pg_dump %s -d mcp_bench > %s/postgres.sql" % (self.pg, backup_dir))
        steps["cp -r config"] = self.timed("cp -r %s %s/config" % (self.config_dir, backup_dir))
        steps["tar -czf volumes.tar.gz"] = self.timed("tar -czf %s/volumes.tar.gz %s 2>/dev/null" % (backup_dir, self.files))
        self.sh("cat > %s/manifest.json" % backup_dir,
                input=json.dumps({"timestamp": stamp, "type": "full", "components": ["database", "config", "volumes"]}).encode())
        steps["tar -czf <dir>.tar.gz"] = self.timed("tar -czf %s -C %s %s" % (archive, self.work, name))
        self.results["manual_stored"] = os.path.getsize(self.local(archive))
        # `aws s3 cp` then `aws s3 ls`
        steps["upload (aws s3 cp)"] = self.timed(self.s3_on_host("c.upload_file(a[0], a[1], a[2]); c.head_object(Bucket=a[1], Key=a[2])",
                                                                 archive, self.bucket, key))
        self.sh("rm -rf %s %s" % (backup_dir, archive))
        self.results["manual_backup"] = time.time() - t0
        self.results["manual_backup_steps"] = steps
        self.results["manual_backup_disk"] = sampler.finish().peak_disk
        self.results["manual_key"] = key
        self.results["manual_name"] = name

    def our_backup(self):
        args = dict(self.target_args(), **self.pg_args("mcp_bench"))
        args.update(state="present", components=["postgres", "config", "volumes"], config_paths=[self.config_dir],
                    volume_paths=[self.files], platform_env=self.config_dir + "/platform.env", work_dir=self.tmp,
                    compression_level=self.args.level, compression_threads=self.args.threads)
        seconds, out, sampler = self.ansible_module(args)
        self.results["ours_backup"] = seconds
        self.results["ours_set"] = out["set_id"]
        self.results["ours_stored"] = out["summary"]["stored_bytes"]
        self.results["ours_raw"] = out["summary"]["raw_bytes"]
        self.results["ours_components"] = dict((n, c["seconds"]) for n, c in out["manifest"]["components"].items())
        self.results["ours_backup_disk"] = sampler.peak_disk
        self.results["ours_backup_rss"] = sampler.peak_module_rss
        self.results["ours_backup_children_rss"] = sampler.peak_children_rss

    def manual_restore(self):
        for db in self.scratch_dbs:
            self.admin('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db)
        restore_dir = self.work + "/restore-manual"
        files_dir = self.work + "/files-manual"
        download = self.work + "/backup.tar.gz"
        inner = "%s/%s" % (restore_dir, self.results["manual_name"])
        self.sh("mkdir -p %s %s" % (restore_dir, files_dir))
        sampler = Sampler([self.local(self.work)])
        sampler.start()
        steps = {}
        t0 = time.time()
        steps["download (aws s3 cp)"] = self.timed(self.s3_on_host("c.download_file(a[0], a[1], a[2])",
                                                                   self.bucket, self.results["manual_key"], download))
        steps["tar -xzf backup.tar.gz"] = self.timed("tar -xzf %s -C %s" % (download, restore_dir))
        steps["createdb; psql < postgres.sql"] = self.timed("createdb %s %s && psql -q %s -d %s < %s/postgres.sql > /dev/null" % (
            self.pg, self.scratch_dbs[0], self.pg, self.scratch_dbs[0], inner))
        steps["tar -xzf volumes.tar.gz"] = self.timed("tar -xzf %s/volumes.tar.gz -C %s" % (inner, files_dir))
        self.results["manual_restore"] = time.time() - t0
        self.results["manual_restore_steps"] = steps
        self.results["manual_restore_disk"] = sampler.finish().peak_disk
        self.sh("rm -rf %s %s" % (restore_dir, download))
        self.results["manual_restore_ok"] = self.counts(self.scratch_dbs[0]) == self.source_counts

    def our_restore(self):
        files_dir = self.work + "/files-ours"
        self.sh("mkdir -p %s" % files_dir)
        t0 = time.time()
        self.admin('CREATE DATABASE "%s"' % self.scratch_dbs[1])
        create_s = time.time() - t0
        args = dict(self.target_args(), **self.pg_args(self.scratch_dbs[1]))
        args.update(state="restored", backup_id=self.results["ours_set"], components=["postgres", "volumes"],
                    postgres_restore_clean=False, jobs=self.args.jobs, restore_root=files_dir, work_dir=self.tmp)
        seconds, out, sampler = self.ansible_module(args)
        self.results["ours_restore"] = seconds + create_s
        self.results["ours_restore_components"] = dict((n, c["seconds"]) for n, c in out["restore"].items())
        self.results["ours_restore_disk"] = sampler.peak_disk
        self.results["ours_restore_rss"] = sampler.peak_module_rss
        self.results["ours_restore_ok"] = self.counts(self.scratch_dbs[1]) == self.source_counts

    def cleanup(self):
        for db in self.scratch_dbs:
            try:
                self.admin('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db)
            except psycopg2.Error as exc:
                print("cleanup: could not drop %s: %s" % (db, exc))
        for path in (self.work, self.tmp):
            shutil.rmtree(self.local(path), ignore_errors=True)
        if os.path.exists(self.local(self.pgpass)):
            os.unlink(self.local(self.pgpass))
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + "/"):
            keys.extend(o["Key"] for o in page.get("Contents", []) or [])
        for start in range(0, len(keys), 1000):
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]]})
        for up in self.s3.list_multipart_uploads(Bucket=self.bucket, Prefix=self.prefix + "/").get("Uploads", []) or []:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=up["Key"], UploadId=up["UploadId"])
        if not self.args.keep_dataset:
            gen_dataset.main(["--drop"] + self.dataset_args())
        try:
            os.rmdir(self.local(BENCH_DIR))  # only when empty (a kept dataset stays)
        except OSError:
            pass
        self.ssh.close()

    # ------------------------------------------------------------------ report

    def report(self):
        r = self.results
        db_mb = self.db_size / MIB
        files_mb = du(self.local(self.files)) / MIB if os.path.exists(self.local(self.files)) else float("nan")
        print()
        print("dataset: database mcp_bench %.0f MB (pg_database_size) on %s:%d (%s), files %.0f MB on %s; %d CPUs; mcp_backup zstd "
              "level %d, threads %d, part %d MiB x %d in flight, pg_restore --jobs %d"
              % (db_mb, self.pg_node, self.pg_port, "scratch server" if self.args.private_pg else "the lab primary", files_mb,
                 self.host, os.cpu_count(), self.args.level, self.args.threads, self.args.part_size_mb, self.args.max_in_flight,
                 self.args.jobs))
        print()
        row = "%-44s %10s %12s"
        print(row % ("backup", "seconds", "stored MB"))
        print(row % ("manual backup.sh steps (on %s, over SSH)" % self.host, "%.1f" % r["manual_backup"], "%.0f" % (r["manual_stored"] / MIB)))
        for name, sec in r["manual_backup_steps"].items():
            print(row % ("  " + name, "%.1f" % sec, ""))
        print(row % ("mcp_backup (ansible %s -m)" % self.host, "%.1f" % r["ours_backup"], "%.0f" % (r["ours_stored"] / MIB)))
        for name, sec in sorted(r["ours_components"].items()):
            print(row % ("  component %s (concurrent)" % name, "%.1f" % sec, ""))
        print(row % ("pg_dump alone > /dev/null (plain, the manual's)", "%.1f" % r["pg_dump_plain"], ""))
        print(row % ("pg_dump -Fc -Z0 alone > /dev/null (ours runs)", "%.1f" % r["pg_dump_custom"], ""))
        print()
        print(row % ("restore", "seconds", "rows ok"))
        print(row % ("manual restore.sh steps", "%.1f" % r["manual_restore"], r["manual_restore_ok"]))
        for name, sec in r["manual_restore_steps"].items():
            print(row % ("  " + name, "%.1f" % sec, ""))
        print(row % ("mcp_backup state=restored", "%.1f" % r["ours_restore"], r["ours_restore_ok"]))
        for name, sec in sorted(r["ours_restore_components"].items()):
            print(row % ("  component %s" % name, "%.1f" % sec, ""))
        print()
        ratios = [
            ("backup: ours / manual", r["ours_backup"] / r["manual_backup"], "<= 0.20"),
            ("backup: ours / pg_dump alone (plain)", r["ours_backup"] / r["pg_dump_plain"], "<= 2.0"),
            ("backup: ours / pg_dump -Fc -Z0 alone", r["ours_backup"] / r["pg_dump_custom"], "<= 2.0"),
            ("restore: ours / manual", r["ours_restore"] / r["manual_restore"], "<= 0.50"),
            ("stored size: ours / manual", r["ours_stored"] / float(r["manual_stored"]), ""),
        ]
        for name, value, target in ratios:
            print("%-44s %8.3f   %s" % (name, value, ("target " + target) if target else ""))
        print()
        print("peak extra disk on %s: ours backup %.1f MB, ours restore %.1f MB (parallel pg_restore needs the dump as a file); "
              "manual backup %.0f MB, manual restore %.0f MB"
              % (self.host, r["ours_backup_disk"] / MIB, r["ours_restore_disk"] / MIB, r["manual_backup_disk"] / MIB,
                 r["manual_restore_disk"] / MIB))
        print("peak RSS of the mcp_backup module process on %s: backup %.0f MB (its children pg_dump/tar %.0f MB), restore %.0f MB"
              % (self.host, r["ours_backup_rss"] / MIB, r["ours_backup_children_rss"] / MIB, r["ours_restore_rss"] / MIB))

    # ------------------------------------------------------------------ the scratch server

    def node(self, argv, **kw):
        """As root on the PG node, through the lab's backdoor: setting up the scratch server is not what is timed."""
        return labhosts.execute(self.pg_node, argv, **kw)

    def start_private_pg(self):
        """A throwaway PostgreSQL 15 for the bench alone on the PG node (initdb defaults, its own port, not replicated),
        reachable across the bridge with scram passwords like the lab's."""
        d = self.private_dir
        as_pg = ["runuser", "-u", "postgres", "--"]
        self.node(["rm", "-rf", d])
        self.node(["install", "-d", "-o", "postgres", "-g", "postgres", "-m", "700", d])
        self.private_started = True
        self.node(["sh", "-c", "umask 077 && cat > %s/pw && chown postgres: %s/pw" % (d, d)], input=CFG["lab_pg_admin_password"] + "\n")
        self.node(as_pg + [PG_BIN + "/initdb", "-D", d + "/data", "-U", "postgres", "--auth-local=peer", "--auth-host=scram-sha-256",
                           "--pwfile=%s/pw" % d, "-E", "UTF8", "--locale=C.UTF-8"])
        self.node(["rm", "-f", d + "/pw"])
        conf = "listen_addresses = '%s'\nport = %d\nunix_socket_directories = '%s'\n" % (self.pg_host, self.pg_port, d)
        hba = "host all all %s scram-sha-256\n" % CFG["lab_network"]
        self.node(as_pg + ["sh", "-c", "cat >> %s/data/postgresql.conf" % d], input=conf)
        self.node(as_pg + ["sh", "-c", "cat >> %s/data/pg_hba.conf" % d], input=hba)
        self.node(as_pg + [PG_BIN + "/pg_ctl", "-D", d + "/data", "-l", d + "/log", "-w", "start"])

    def stop_private_pg(self):
        if not self.private_started:
            return
        self.node(["runuser", "-u", "postgres", "--", PG_BIN + "/pg_ctl", "-D", self.private_dir + "/data", "-m", "fast", "-w", "stop"],
                  check=False)
        self.node(["rm", "-rf", self.private_dir])

    def main(self):
        lab_up()
        try:
            if self.args.private_pg:
                self.start_private_pg()
            self.prepare()
            self.dataset()
            self.db_size = self.admin("SELECT pg_database_size('mcp_bench')")[0][0]
            self.source_counts = self.counts("mcp_bench")
            print("timing pg_dump alone ...", flush=True)
            self.pg_dump_alone()
            print("timing the manual backup ...", flush=True)
            self.manual_backup()
            print("timing mcp_backup ...", flush=True)
            self.our_backup()
            print("timing the manual restore ...", flush=True)
            self.manual_restore()
            print("timing mcp_backup restore ...", flush=True)
            self.our_restore()
            self.report()
        finally:
            try:
                self.cleanup()
            finally:
                self.stop_private_pg()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=800, help="database size, default 800")
    ap.add_argument("--files-mb", type=int, help="bytes of files, default --size-mb")
    ap.add_argument("--host", default=MCP_HOSTS[0], choices=MCP_HOSTS, help="the MCP host that backs up and restores (default %(default)s)")
    ap.add_argument("--host-dir", default=gen_dataset.HOST_DIR, help="the files on that host (default %(default)s)")
    ap.add_argument("--private-pg", action="store_true",
                    help="run a throwaway PostgreSQL 15 on --pg-node, port --pg-port, for the bench instead of the lab primary")
    ap.add_argument("--pg-node", default=PRIMARY, choices=PG_NODES, help="the PG node of the dataset (default %(default)s)")
    ap.add_argument("--pg-port", type=int, default=5499, help="the scratch server's port (--private-pg; default %(default)s)")
    ap.add_argument("--reuse", action="store_true", help="use the existing mcp_bench and files")
    ap.add_argument("--keep-dataset", action="store_true", help="do not drop mcp_bench and the files at the end")
    ap.add_argument("--level", type=int, default=1, help="mcp_backup compression_level")
    ap.add_argument("--threads", type=int, default=0, help="mcp_backup compression_threads")
    ap.add_argument("--part-size-mb", type=int, default=16)
    ap.add_argument("--max-in-flight", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=None, help="pg_restore --jobs for ours (default: the host's CPUs, at least 2)")
    args = ap.parse_args()
    if args.jobs is None:
        args.jobs = max(2, os.cpu_count() or 2)  # the host shares this machine's CPUs
    if not args.private_pg and args.pg_node != PRIMARY:
        ap.error("without --private-pg the dataset is on the lab primary (%s)" % PRIMARY)
    Bench(args).main()


if __name__ == "__main__":
    main()
