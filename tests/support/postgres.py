# -*- coding: utf-8 -*-
"""Throwaway PostgreSQL 15 clusters from the Debian binaries: a primary and, optionally, a streaming replica.

No mocks: initdb/pg_basebackup/pg_ctl as the ``postgres`` user, ports from ``free_port`` on 127.0.0.1, sockets in the
cluster's temp folder. ``needs_pg`` skips (with the reason) when not root or PG 15 is absent. The fixtures that start
them are in tests/component/conftest.py.
"""

from __future__ import absolute_import, division, print_function

import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

from support.ports import free_port
from support.waiting import wait_for

PGBIN = "/usr/lib/postgresql/15/bin"


def pg_available():
    """None when clusters can run here, else why not."""
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
        # imported here: tests/component/conftest.py imports this module before pytest-ansible puts its collection
        # finder in place, and a collection package imported before that breaks every later import from it
        from ansible_collections.mcp.platform.plugins.module_utils import postgres

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


def gate(result_or_gates, name):
    """The gate called ``name`` of a postgres_failover result (or of its gate list)."""
    gates = result_or_gates["gates"] if isinstance(result_or_gates, dict) else result_or_gates
    return [g for g in gates if g["name"] == name][0]
