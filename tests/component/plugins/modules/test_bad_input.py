# -*- coding: utf-8 -*-
"""Values that once raised a traceback or were silently accepted (reliability review): each module answers with a
``fail_json`` naming the option and leaves nothing behind. The real ``ansible`` CLI runs the installed modules
(``run_module_result``, tests/component/conftest.py); none of these calls reaches a service."""
from __future__ import absolute_import, division, print_function

import json
import os

import pytest

S3 = {"s3_bucket": "b", "s3_access_key": "AKIAEXAMPLE", "s3_secret_key": "Hunter2SecretKey"}


def _cases(tmp):
    state = os.path.join(tmp, "state")
    maint = {"state": "enabled", "state_dir": state, "services": ["git"], "msg": "upgrading",
             "responder_url": "http://127.0.0.1:9"}
    return [
        ("mcp_lock", {"state": "acquired", "path": os.path.join(tmp, "fleet.lock"), "ttl": 1000000000000},
         "ttl must be <= "),
        ("mcp_maintenance", dict(maint, ttl=1000000000000), "ttl must be <= "),
        ("mcp_maintenance", dict(maint, bypass_sources=["10.0.0.0/33"]), "bypass_sources: '10.0.0.0/33' is not an IP"),
        ("mcp_maintenance", dict(maint, bypass_sources=["999.1.1.1"]), "bypass_sources: '999.1.1.1' is not an IP"),
        ("mcp_maintenance", dict(maint, priority=-1), "priority must be >= 1"),
        ("mcp_maintenance", dict(maint, services=["git\n"]), "git\\n"),
        ("mcp_backup_info", dict(S3, s3_endpoint_url="http://"), "s3_endpoint_url must be http(s)://host"),
        ("mcp_backup_info", dict(S3, s3_endpoint_url="http://127.0.0.1:9", s3_region="not a region"),
         "s3_region 'not a region' is not a region name"),
        ("mcp_backup_info", dict(S3, s3_endpoint_url="http://127.0.0.1:9", s3_retries=100000), "s3_retries must be <= 20"),
        ("mcp_backup_info", dict(S3, s3_endpoint_url="http://127.0.0.1:9", max_age=-1), "max_age must be a positive"),
        ("mcp_backup", dict(S3, state="pruned", s3_endpoint_url="http://127.0.0.1:9", retention={"daily": "nan"}),
         "retention.daily must be a finite number"),
        ("mcp_backup", dict(S3, state="present", s3_endpoint_url="http://127.0.0.1:9", label="pre-update\n"), "label"),
        ("mcp_backup", dict(S3, state="verified", s3_endpoint_url="http://127.0.0.1:9", backup_id="20250101T020000Z-abcdef\n"),
         "backup_id"),
    ]


@pytest.mark.parametrize("index", range(len(_cases("/x"))))
def test_bad_value_refused_naming_the_option(run_module_result, tmp_path, index):
    module, args, words = _cases(str(tmp_path))[index]
    (tmp_path / "state").mkdir()
    proc, result = run_module_result(module, args)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and result and result["failed"], out
    assert words in result["msg"], result["msg"]
    assert "Traceback" not in out and "exception" not in result, out
    assert "Hunter2SecretKey" not in out
    assert not os.path.exists(os.path.join(str(tmp_path), "state", "maintenance.json"))
    assert not os.path.exists(os.path.join(str(tmp_path), "fleet.lock"))


@pytest.mark.parametrize("module,args", [
    ("mcp_logs_info", {"docker_host": "tcp://ops:Url-Pass-Secret@127.0.0.1:9", "labels": ["io.mcp-platform.managed=true"]}),
    ("mcp_rollout", {"docker_host": "tcp://ops:Url-Pass-Secret@127.0.0.1:9", "host_label": "mcp-1", "version": "1.0.0",
                     "replicas": 1, "mode": "stop", "services": [{"name": "git"}]}),
    ("mcp_backup_info", dict(S3, s3_endpoint_url="http://ak:Url-Pass-Secret@127.0.0.1:9", s3_retries=1)),
], ids=["mcp_logs_info", "mcp_rollout", "mcp_backup_info"])
def test_password_in_a_url_is_masked_in_the_error(run_module_result, module, args):
    """An unreachable endpoint's error repeats its URL: the userinfo password is masked, as mcp_health does. (The ad hoc
    CLI's own error banner echoes the task's arguments; a playbook's shows the task's source, so the module's result is
    what is checked.)"""
    proc, result = run_module_result(module, args)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and result and result["failed"], out
    assert "Url-Pass-Secret" not in json.dumps(result), result
    assert "127.0.0.1:9" in result["msg"], "the message still names the endpoint: %s" % result["msg"]


def test_an_s3_endpoint_that_never_answers_fails_at_the_overall_timeout(run_module_result):
    """It accepts the connection and never answers: per-request timeouts times retries would hold the daily check for
    minutes; the module's one deadline ends it, naming the store."""
    import socket
    import time
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        port = listener.getsockname()[1]
        t0 = time.monotonic()
        proc, result = run_module_result("mcp_backup_info", dict(S3, s3_endpoint_url="http://127.0.0.1:%d" % port,
                                                                 s3_prefix="lab", timeout=3))
        took = time.monotonic() - t0
    finally:
        listener.close()
    assert proc.returncode != 0 and result and result["failed"], proc.stdout
    assert "reading the backup sets in s3://b/lab did not finish within 3 s" in result["msg"], result["msg"]
    assert took < 30, "took %.1f s" % took
    assert "Traceback" not in proc.stdout + proc.stderr
