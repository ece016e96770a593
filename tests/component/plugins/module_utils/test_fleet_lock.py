# -*- coding: utf-8 -*-
"""mcp_lock through the real ``ansible`` CLI (the ``run_module`` fixture) on a lock file of its own (``lockdir``)."""

from __future__ import absolute_import, division, print_function

import json
import os


def test_module_second_acquirer_fails_naming_holder(run_module, lockdir):
    path = os.path.join(lockdir, "fleet.lock")
    rc, out = run_module("mcp.platform.mcp_lock", "state=acquired path=%s owner=alice/job1 operation='update to 2.4.0' ttl=900"
                         % path, verbosity="-v")
    assert rc == 0 and "localhost | CHANGED" in out, out
    rc, out = run_module("mcp.platform.mcp_lock", "state=acquired path=%s owner=bob/job2 operation=failover" % path,
                         verbosity="-v")
    assert rc != 0 and "held by alice/job1 for operation 'update to 2.4.0'" in out, out
    rc, out = run_module("mcp.platform.mcp_lock", "state=released path=%s owner=alice/job1" % path, verbosity="-v")
    assert rc == 0 and "localhost | CHANGED" in out and not os.path.exists(path), out
    assert json.dumps(out)  # output is text
