# -*- coding: utf-8 -*-
"""postgres.py through a module: mcp_maintenance run by the real ``ansible`` CLI (``run_module``) with the libpq
environment; nothing listens on the port it is pointed at (a refused connection names the target, never the password).
"""

from __future__ import absolute_import, division, print_function

from support.ports import free_port


def test_maintenance_module_reads_the_libpq_environment_and_masks_it(run_module, tmp_path):
    """mcp_maintenance takes PGHOST/PGPORT/PGPASSWORD; the password never reaches the output."""
    port = free_port()
    rc, out = run_module("mcp.platform.mcp_maintenance", "state=status state_dir=%s" % tmp_path,
                         extra_env={"PGHOST": "127.0.0.1", "PGPORT": str(port), "PGUSER": "x",
                                    "PGPASSWORD": "EnvSecret11"})
    assert rc != 0 and "PostgreSQL (127.0.0.1:%d/" % port in out, out
    assert "EnvSecret11" not in out
    # PGPASSWORD alone does not name a database: the run does not connect
    rc, out = run_module("mcp.platform.mcp_maintenance", "state=status state_dir=%s" % tmp_path,
                         extra_env={"PGPASSWORD": "EnvSecret11"})
    assert rc == 0 and "postgres_read_only: null" in out, out
    # an explicit option beats the environment; a bad DSN is named and masked
    rc, out = run_module("mcp.platform.mcp_maintenance", "state=status state_dir=%s postgres_port=%d "
                         "postgres_dsn='host=127.0.0.1 port=1 password=DsnSecret12'" % (tmp_path, port),
                         extra_env={"PGPORT": "2"})
    assert rc != 0 and "PostgreSQL (127.0.0.1:%d/" % port in out, out
    assert "DsnSecret12" not in out
    rc, out = run_module("mcp.platform.mcp_maintenance",
                         "state=status state_dir=%s postgres_dsn='host=h password=DsnSecret12 bogus'" % tmp_path)
    assert rc != 0 and "postgres_dsn is not a valid libpq connection string" in out
    assert "DsnSecret12" not in out
