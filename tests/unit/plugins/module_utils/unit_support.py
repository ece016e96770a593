# -*- coding: utf-8 -*-
"""Shared helpers of the unit tests (not a test file): throwaway PostgreSQL 15 clusters and modules run through
the real ``ansible`` CLI.

No mocks: initdb/pg_basebackup/pg_ctl as the ``postgres`` user, ports 33000-33999 on 127.0.0.1, sockets in the
cluster's temp folder. ``needs_pg`` skips (with the reason) when not root or PG 15 is absent. Test files import
it after putting this folder on ``sys.path``.
"""

from __future__ import absolute_import, division, print_function

import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from ansible_collections.mcp.platform.plugins.module_utils import postgres

PGBIN = "/usr/lib/postgresql/15/bin"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
COLLECTIONS = os.path.join(ROOT, ".build", "collections")


def pg_available():
    if os.geteuid() != 0:
        return "needs root (clusters run as the postgres user via runuser)"
    if not os.path.exists(os.path.join(PGBIN, "initdb")):
        return "PostgreSQL 15 binaries not found in %s" % PGBIN
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres OS user"
    return None


needs_pg = pytest.mark.skipif(pg_available() is not None, reason=str(pg_available()))


def free_port():
    for _attempt in range(200):
        port = random.randint(33000, 33999)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port in 33000-33999")


def as_pg(argv, check=True):
    proc = subprocess.run(["runuser", "-u", "postgres", "--"] + argv, cwd="/", stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), proc.stdout.decode()))
    return proc


class Node:
    def __init__(self, root, name, port):
        self.root, self.name, self.port = root, name, port
        self.data = os.path.join(root, name)
        self.log = os.path.join(root, name + ".log")
        self.dsn = "host=127.0.0.1 port=%d user=postgres dbname=postgres" % port

    def start(self):
        as_pg([PGBIN + "/pg_ctl", "-D", self.data, "-o", "-p %d" % self.port, "-l", self.log, "-w", "start"])

    def stop(self, mode="fast"):
        as_pg([PGBIN + "/pg_ctl", "-D", self.data, "-m", mode, "-w", "stop"], check=False)

    def running(self):
        return as_pg([PGBIN + "/pg_ctl", "-D", self.data, "status"], check=False).returncode == 0

    def sql(self, q, args=None):
        conn = postgres.connect(self.dsn, 5)
        try:
            return postgres.query(conn, q, args)
        finally:
            conn.close()


class Cluster:
    """A primary and, optionally, a streaming replica in a fresh temp folder."""

    def __init__(self, replica=True):
        self.root = tempfile.mkdtemp(prefix="mcpha", dir="/tmp")
        os.chmod(self.root, 0o755)
        pw = pwd.getpwnam("postgres")
        os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.primary = Node(self.root, "primary", free_port())
        as_pg([PGBIN + "/initdb", "-D", self.primary.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
               "--locale=C.UTF-8"])
        with open(os.path.join(self.primary.data, "postgresql.conf"), "a") as fh:
            fh.write("listen_addresses='127.0.0.1'\nunix_socket_directories='%s'\nwal_level=replica\n"
                     "max_wal_senders=5\nwal_keep_size='256MB'\nhot_standby=on\nwal_log_hints=on\n"
                     "fsync=off\nshared_buffers='32MB'\n" % self.root)
        self.primary.start()
        self.replica = None
        if replica:
            self.replica = Node(self.root, "replica", free_port())
            as_pg([PGBIN + "/pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
                   "-D", self.replica.data, "-R", "-X", "stream", "-c", "fast"])
            self.replica.start()
            wait_for(lambda: self.replica.sql("SELECT status FROM pg_stat_wal_receiver") == [("streaming",)], 15)

    def destroy(self):
        for node in (self.primary, self.replica):
            if node is not None and node.running():
                node.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def wait_for(pred, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if pred():
                return True
        except Exception:  # pylint: disable=broad-except
            pass
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %s s" % timeout)
        time.sleep(interval)


def gate(result_or_gates, name):
    gates = result_or_gates["gates"] if isinstance(result_or_gates, dict) else result_or_gates
    return [g for g in gates if g["name"] == name][0]


def run_module(module, args, verbosity="-vvv", extra_env=None):
    """``ansible localhost -m <module> -a <args>``: (rc, output). ``extra_env`` is the module's environment too."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_PYTHON_INTERPRETER=os.path.join(VENV_BIN, "python"))
    env.update(extra_env or {})
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible"), "localhost", verbosity, "-m", module, "-a", args],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT, check=False, timeout=120)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")
