# -*- coding: utf-8 -*-
"""mcp_health's header logging: the module run in-process against a local HTTP server (``http_url``)."""
from __future__ import absolute_import, division, print_function

import pytest


# --------------------------------------------------------------------------------------------
# headers: hidden from the invocation log, secret ones masked in the output
# --------------------------------------------------------------------------------------------
def test_header_values_stay_out_of_the_module_log_and_secret_ones_out_of_the_output(http_url, monkeypatch, capsys):
    """The invocation log (syslog/journal) is written before the module runs: every header value is hidden there;
    the result then shows the harmless ones and still masks the secret ones."""
    import json

    from ansible.module_utils import basic
    from ansible.module_utils.testing import patch_module_args

    from ansible_collections.mcp.platform.plugins.modules import mcp_health

    logged = []
    monkeypatch.setattr(basic.AnsibleModule, "log", lambda self, msg, log_args=None: logged.append(msg))
    args = {"checks": [{"name": "h", "type": "http", "url": http_url + "/headers", "body_regex": "token=tok-",
                        "headers": {"X-Token": "tok-s3cr3t-4711", "X-Trace-Id": "trace-visible-0815"}}]}
    with patch_module_args(args), pytest.raises(SystemExit):
        mcp_health.main()
    result = json.loads(capsys.readouterr().out)
    log = "\n".join(logged)
    assert "Invoked with" in log
    assert "tok-s3cr3t-4711" not in log and "trace-visible-0815" not in log, log
    assert result["status"] == "ok", result
    out = json.dumps(result)
    assert "tok-s3cr3t-4711" not in out
    assert "trace-visible-0815" in out
