#!/usr/bin/env python3
"""Backup and restore: the manual's backup.sh / restore.sh steps against mcp.platform.mcp_backup, same data, same S3.

    .venv/bin/python bench/backup_restore.py                  # 800 MB database + 800 MB of files
    .venv/bin/python bench/backup_restore.py --size-mb 50     # a quick try
    .venv/bin/python bench/backup_restore.py --reuse          # keep an existing dataset (bench/gen_dataset.py)
    .venv/bin/python bench/backup_restore.py --private-pg --pg-port 25499   # own PostgreSQL, not the lab primary

Needs the lab (make lab-up). Makes the dataset with bench/gen_dataset.py (database ``mcp_bench`` on the lab primary,
files under .lab/bench/files), then runs, one after the other against the lab's S3 endpoint (moto):

backup
  manual   the steps of the manual's backup.sh: ``pg_dump > postgres.sql``, ``cp -r`` the config, ``tar -czf volumes.tar.gz``,
           manifest, ``tar -czf`` of the whole folder, upload, ``rm -rf``. The AWS CLI is not installed here, so
           ``aws s3 cp`` is stood in for by boto3's ``upload_file`` (the same managed multipart transfer the CLI uses).
  ours     ``ansible localhost -m mcp.platform.mcp_backup`` (components postgres + config + volumes; streamed, zstd, SHA-256,
           S3 multipart, manifest last), Ansible's own start-up included.
  pg_dump  alone to /dev/null: plain SQL (the manual's command) and custom format without compression (what ours runs).
restore
  manual   restore.sh: download (boto3 ``download_file`` for ``aws s3 cp``), ``tar -xzf`` the set, ``psql < postgres.sql``
           into a fresh database, ``tar -xzf volumes.tar.gz`` into a fresh folder.
  ours     ``mcp_backup`` state=restored into a fresh database (``pg_restore --jobs``) and a fresh folder.

Prints a table and the ratios (targets from the issue: backup <= 1/5 of the manual, <= 2x pg_dump alone; restore <= 1/2),
the peak extra local disk and the peak RSS of the module process. Asserts nothing. Removes everything it made
(scratch databases, folders, objects; the dataset too unless --keep-dataset).
"""
import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time

import boto3
import psycopg2
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import gen_dataset  # noqa: E402

LAB_DIR = os.path.abspath(os.environ.get("MCP_LAB_DIR", os.path.join(ROOT, ".lab")))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
MIB = 1024.0 * 1024.0


def lab_config():
    with open(os.path.join(ROOT, "inventories", "lab", "group_vars", "all", "lab.yml")) as fh:
        return yaml.safe_load(fh)


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


def processes():
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/cmdline" % name, "rb") as fh:
                    cmd = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
                with open("/proc/%s/stat" % name) as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                out.append((int(name), ppid, cmd))
            except (OSError, ValueError, IndexError):
                pass
    return out


class Sampler(threading.Thread):
    """Samples, every 0.2 s: bytes under the watched folders, and the RSS of the module process and its children."""

    def __init__(self, folders, module_marker=None):
        super().__init__(daemon=True)
        self.folders = folders
        self.marker = module_marker
        self.stop = threading.Event()
        self.peak_disk = 0
        self.peak_module_rss = 0
        self.peak_children_rss = 0

    def run(self):
        while not self.stop.is_set():
            self.peak_disk = max(self.peak_disk, sum(du(f) for f in self.folders if os.path.exists(f)))
            if self.marker:
                procs = processes()
                mods = [p for p in procs if self.marker in p[2] and "ansible " not in p[2]]
                if mods:
                    self.peak_module_rss = max(self.peak_module_rss, max(rss_of(p[0]) for p in mods))
                    ids = set(p[0] for p in mods)
                    kids = [p for p in procs if p[1] in ids and p[0] not in ids]
                    self.peak_children_rss = max(self.peak_children_rss, sum(rss_of(p[0]) for p in kids))
            self.stop.wait(0.2)

    def finish(self):
        self.stop.set()
        self.join()
        return self


def run(argv, **kw):
    t0 = time.time()
    subprocess.run(argv, check=True, **kw)
    return time.time() - t0


class Bench:
    def __init__(self, args):
        self.args = args
        self.lab = lab_config()
        self.bucket = self.lab["lab_s3_bucket"]
        self.endpoint = "http://127.0.0.1:%d" % self.lab["lab_s3_port"]
        self.s3 = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                               aws_access_key_id=self.lab["lab_s3_access_key"], aws_secret_access_key=self.lab["lab_s3_secret_key"])
        self.token = secrets.token_hex(4)
        self.prefix = "bench/%s" % self.token
        self.work = os.path.join(LAB_DIR, "bench", "work-%s" % self.token)
        self.files = args.dir
        self.config_dir = os.path.join(LAB_DIR, "hosts", "mcp-1", "etc", "mcp")
        self.pg = ["-h", "127.0.0.1", "-p", str(args.pg_port), "-U", "postgres"]
        self.env = dict(os.environ, PGOPTIONS="-c default_transaction_read_only=off")
        self.results = {}
        self.scratch_dbs = ["mcp_bench_restore_manual", "mcp_bench_restore_ours"]

    # ------------------------------------------------------------------ helpers

    def admin(self, sql, db="postgres"):
        conn = psycopg2.connect(host="127.0.0.1", port=self.args.pg_port, user="postgres", dbname=db,
                                options="-c default_transaction_read_only=off")
        conn.autocommit = True
        try:
            cur = conn.cursor()
            cur.execute(sql)
            return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def counts(self, db):
        return dict(self.admin("SELECT 'events', count(*) FROM events UNION ALL SELECT 'documents', count(*) FROM documents", db))

    def ansible_module(self, args, tmp):
        os.makedirs(tmp, exist_ok=True)
        env = dict(self.env, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), MCP_LAB_DIR=LAB_DIR,
                   ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"),
                   ANSIBLE_PYTHON_INTERPRETER=os.path.join(VENV_BIN, "python"), TMPDIR=tmp,
                   ANSIBLE_LOCAL_TEMP=tmp, ANSIBLE_REMOTE_TMP=tmp, ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                   ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
        argv = [os.path.join(VENV_BIN, "ansible"), "localhost", "-i", "localhost,", "-c", "local",
                "-m", "mcp.platform.mcp_backup", "-a", json.dumps(args)]
        sampler = Sampler([tmp], module_marker="AnsiballZ_mcp_backup")
        sampler.start()
        t0 = time.time()
        res = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seconds = time.time() - t0
        sampler.finish()
        try:
            out = json.loads(res.stdout[res.stdout.index("{"):])["plays"][0]["tasks"][0]["hosts"]["localhost"]
        except (ValueError, KeyError, IndexError):
            raise SystemExit("mcp_backup failed (rc %d):\n%s\n%s" % (res.returncode, res.stdout[-3000:], res.stderr[-3000:]))
        if out.get("failed"):
            raise SystemExit("mcp_backup failed: %s" % out.get("msg"))
        return seconds, out, sampler

    def target_args(self):
        return {"s3_endpoint_url": self.endpoint, "s3_bucket": self.bucket, "s3_prefix": self.prefix,
                "s3_access_key": self.lab["lab_s3_access_key"], "s3_secret_key": self.lab["lab_s3_secret_key"],
                "part_size_mb": self.args.part_size_mb, "max_in_flight": self.args.max_in_flight}

    # ------------------------------------------------------------------ steps

    def dataset(self):
        if self.args.reuse:
            return
        gen_dataset.main(["--size-mb", str(self.args.size_mb), "--files-mb", str(self.args.files_mb or self.args.size_mb),
                          "--pg-port", str(self.args.pg_port), "--dir", self.files])

    def pg_dump_alone(self):
        with open(os.devnull, "wb") as null:
            self.results["pg_dump_plain"] = run(["pg_dump"] + self.pg + ["-d", "mcp_bench"], stdout=null, env=self.env)
            self.results["pg_dump_custom"] = run(["pg_dump"] + self.pg + ["-Fc", "-Z0", "-d", "mcp_bench"], stdout=null, env=self.env)

    def manual_backup(self):
        stamp = time.strftime("%Y%m%d_%H%M%S")
        backup_dir = os.path.join(self.work, "mcp-%s" % stamp)
        sampler = Sampler([self.work])
        sampler.start()
        steps = {}
        t0 = time.time()
        os.makedirs(backup_dir)
        with open(os.path.join(backup_dir, "postgres.sql"), "wb") as fh:
            steps["pg_dump > postgres.sql"] = run(["pg_dump"] + self.pg + ["-d", "mcp_bench"], stdout=fh, env=self.env)
        steps["cp -r config"] = run(["cp", "-r", self.config_dir, os.path.join(backup_dir, "config")])
        steps["tar -czf volumes.tar.gz"] = run(["tar", "-czf", os.path.join(backup_dir, "volumes.tar.gz"), self.files],
                                               stderr=subprocess.DEVNULL)
        with open(os.path.join(backup_dir, "manifest.json"), "w") as fh:
            json.dump({"timestamp": stamp, "type": "full", "components": ["database", "config", "volumes"]}, fh)
        archive = backup_dir + ".tar.gz"
        steps["tar -czf <dir>.tar.gz"] = run(["tar", "-czf", archive, "-C", self.work, os.path.basename(backup_dir)])
        key = "%s/manual/mcp-%s.tar.gz" % (self.prefix, stamp)
        t1 = time.time()
        self.s3.upload_file(archive, self.bucket, key)  # stand-in for `aws s3 cp`
        self.s3.head_object(Bucket=self.bucket, Key=key)  # `aws s3 ls`
        steps["upload (aws s3 cp)"] = time.time() - t1
        self.results["manual_stored"] = os.path.getsize(archive)
        shutil.rmtree(backup_dir)
        os.unlink(archive)
        self.results["manual_backup"] = time.time() - t0
        self.results["manual_backup_steps"] = steps
        self.results["manual_backup_disk"] = sampler.finish().peak_disk
        self.results["manual_key"] = key

    def our_backup(self):
        args = dict(self.target_args(), state="present", components=["postgres", "config", "volumes"],
                    postgres_host="127.0.0.1", postgres_port=self.args.pg_port, postgres_user="postgres", postgres_dbname="mcp_bench",
                    config_paths=[self.config_dir], volume_paths=[self.files], platform_env=os.path.join(self.config_dir, "platform.env"),
                    compression_level=self.args.level, compression_threads=self.args.threads)
        seconds, out, sampler = self.ansible_module(args, os.path.join(LAB_DIR, "bench", "tmp-ours-%s" % self.token))
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
        restore_dir = os.path.join(self.work, "restore-manual")
        files_dir = os.path.join(self.work, "files-manual")
        os.makedirs(restore_dir)
        os.makedirs(files_dir)
        sampler = Sampler([self.work])
        sampler.start()
        steps = {}
        t0 = time.time()
        download = os.path.join(self.work, "backup.tar.gz")
        self.s3.download_file(self.bucket, self.results["manual_key"], download)  # stand-in for `aws s3 cp`
        steps["download (aws s3 cp)"] = time.time() - t0
        steps["tar -xzf backup.tar.gz"] = run(["tar", "-xzf", download, "-C", restore_dir])
        inner = os.path.join(restore_dir, os.listdir(restore_dir)[0])
        t1 = time.time()
        self.admin('CREATE DATABASE "%s"' % self.scratch_dbs[0])
        with open(os.path.join(inner, "postgres.sql"), "rb") as fh:
            subprocess.run(["psql", "-q"] + self.pg + ["-d", self.scratch_dbs[0]], stdin=fh, stdout=subprocess.DEVNULL, check=True, env=self.env)
        steps["psql < postgres.sql"] = time.time() - t1
        steps["tar -xzf volumes.tar.gz"] = run(["tar", "-xzf", os.path.join(inner, "volumes.tar.gz"), "-C", files_dir])
        self.results["manual_restore"] = time.time() - t0
        self.results["manual_restore_steps"] = steps
        self.results["manual_restore_disk"] = sampler.finish().peak_disk
        shutil.rmtree(restore_dir)
        os.unlink(download)
        self.results["manual_restore_ok"] = self.counts(self.scratch_dbs[0]) == self.source_counts

    def our_restore(self):
        files_dir = os.path.join(self.work, "files-ours")
        os.makedirs(files_dir)
        t0 = time.time()
        self.admin('CREATE DATABASE "%s"' % self.scratch_dbs[1])
        create_s = time.time() - t0
        args = dict(self.target_args(), state="restored", backup_id=self.results["ours_set"], components=["postgres", "volumes"],
                    postgres_host="127.0.0.1", postgres_port=self.args.pg_port, postgres_user="postgres",
                    postgres_dbname=self.scratch_dbs[1], postgres_restore_clean=False, jobs=self.args.jobs,
                    restore_root=files_dir, work_dir=os.path.join(LAB_DIR, "bench", "tmp-ours-%s" % self.token))
        seconds, out, sampler = self.ansible_module(args, os.path.join(LAB_DIR, "bench", "tmp-ours-%s" % self.token))
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
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.rmtree(os.path.join(LAB_DIR, "bench", "tmp-ours-%s" % self.token), ignore_errors=True)
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + "/"):
            keys.extend(o["Key"] for o in page.get("Contents", []) or [])
        for start in range(0, len(keys), 1000):
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]]})
        for up in self.s3.list_multipart_uploads(Bucket=self.bucket, Prefix=self.prefix + "/").get("Uploads", []) or []:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=up["Key"], UploadId=up["UploadId"])
        if not self.args.keep_dataset and os.path.exists(self.files):
            shutil.rmtree(self.files, ignore_errors=True)
        if not self.args.keep_dataset:
            gen_dataset.main(["--drop", "--pg-port", str(self.args.pg_port), "--dir", self.files])

    # ------------------------------------------------------------------ report

    def report(self):
        r = self.results
        db_mb = self.db_size / MIB
        files_mb = du(self.files) / MIB if os.path.exists(self.files) else float("nan")
        print()
        print("dataset: database mcp_bench %.0f MB (pg_database_size), files %.0f MB; %d CPUs; mcp_backup zstd level %d, "
              "threads %d, part %d MiB x %d in flight, pg_restore --jobs %d"
              % (db_mb, files_mb, os.cpu_count(), self.args.level, self.args.threads, self.args.part_size_mb,
                 self.args.max_in_flight, self.args.jobs))
        print()
        row = "%-44s %10s %12s"
        print(row % ("backup", "seconds", "stored MB"))
        print(row % ("manual backup.sh steps", "%.1f" % r["manual_backup"], "%.0f" % (r["manual_stored"] / MIB)))
        for name, sec in r["manual_backup_steps"].items():
            print(row % ("  " + name, "%.1f" % sec, ""))
        print(row % ("mcp_backup (ansible localhost -m)", "%.1f" % r["ours_backup"], "%.0f" % (r["ours_stored"] / MIB)))
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
        print("peak extra local disk: ours backup %.1f MB, ours restore %.1f MB (parallel pg_restore needs the dump as a file); "
              "manual backup %.0f MB, manual restore %.0f MB"
              % (r["ours_backup_disk"] / MIB, r["ours_restore_disk"] / MIB, r["manual_backup_disk"] / MIB, r["manual_restore_disk"] / MIB))
        print("peak RSS of the mcp_backup module process: backup %.0f MB (its children pg_dump/tar %.0f MB), restore %.0f MB"
              % (r["ours_backup_rss"] / MIB, r["ours_backup_children_rss"] / MIB, r["ours_restore_rss"] / MIB))

    def start_private_pg(self):
        """A throwaway PostgreSQL 15 for the bench alone (when the lab's primary is busy with failover tests)."""
        pg_bin = "/usr/lib/postgresql/15/bin"
        self.pg_dir = os.path.join(LAB_DIR, "bench", "pg")
        shutil.rmtree(self.pg_dir, ignore_errors=True)
        os.makedirs(os.path.join(self.pg_dir, "sock"))
        subprocess.run(["chown", "-R", "postgres:", self.pg_dir], check=True)
        as_pg = ["runuser", "-u", "postgres", "--"]
        subprocess.run(as_pg + [pg_bin + "/initdb", "-D", self.pg_dir + "/data", "-U", "postgres", "--auth=trust", "-E", "UTF8",
                                "--locale=C.UTF-8"], check=True, stdout=subprocess.DEVNULL)
        with open(self.pg_dir + "/data/postgresql.conf", "a") as fh:
            fh.write("listen_addresses='127.0.0.1'\nunix_socket_directories='%s/sock'\n" % self.pg_dir)
        subprocess.run(as_pg + [pg_bin + "/pg_ctl", "-D", self.pg_dir + "/data", "-o", "-p %d" % self.args.pg_port,
                                "-l", self.pg_dir + "/log", "-w", "start"], check=True, stdout=subprocess.DEVNULL)

    def stop_private_pg(self):
        subprocess.run(["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_ctl", "-D", self.pg_dir + "/data",
                        "-m", "fast", "-w", "stop"], stdout=subprocess.DEVNULL)
        shutil.rmtree(self.pg_dir, ignore_errors=True)

    def main(self):
        os.makedirs(self.work, exist_ok=True)
        if self.args.private_pg:
            self.start_private_pg()
        try:
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
                if self.args.private_pg:
                    self.stop_private_pg()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=800, help="database size, default 800")
    ap.add_argument("--files-mb", type=int, help="bytes of files, default --size-mb")
    ap.add_argument("--pg-port", type=int, default=25432)
    ap.add_argument("--dir", default=os.path.join(LAB_DIR, "bench", "files"))
    ap.add_argument("--private-pg", action="store_true",
                    help="run a throwaway PostgreSQL 15 on --pg-port for the bench (e.g. --pg-port 25499) instead of the lab primary")
    ap.add_argument("--reuse", action="store_true", help="use the existing mcp_bench and files")
    ap.add_argument("--keep-dataset", action="store_true", help="do not drop mcp_bench and the files at the end")
    ap.add_argument("--level", type=int, default=1, help="mcp_backup compression_level")
    ap.add_argument("--threads", type=int, default=0, help="mcp_backup compression_threads")
    ap.add_argument("--part-size-mb", type=int, default=16)
    ap.add_argument("--max-in-flight", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=max(2, os.cpu_count() or 2), help="pg_restore --jobs for ours")
    Bench(ap.parse_args()).main()


if __name__ == "__main__":
    main()
