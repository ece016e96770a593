# -*- coding: utf-8 -*-
"""mcp_backup_info end to end: the real ``ansible`` CLI runs the module (``run_module_result``) against a moto S3
server (``moto``) holding a set mcp_backup wrote; tests/component/conftest.py. The local target is in
tests/component/plugins/module_utils/test_backup_modules.py."""
from __future__ import absolute_import, division, print_function

import uuid

import pytest

boto3 = pytest.importorskip("boto3")
pytest.importorskip("zstandard")

SECRET = "Zz-s3-secret-info-twice"
AGES = ("age_seconds", "last_good_age_seconds")  # count up between two runs: not part of "the same report"


@pytest.fixture
def bucket(moto):
    """The module's S3 options for a new, empty bucket on the moto server."""
    name = "mcp-info-%s" % uuid.uuid4().hex[:10]
    boto3.client("s3", endpoint_url=moto, aws_access_key_id="test", aws_secret_access_key=SECRET,
                 region_name="us-east-1").create_bucket(Bucket=name)
    return {"s3_endpoint_url": moto, "s3_bucket": name, "s3_prefix": "prod/backups", "s3_access_key": "test",
            "s3_secret_key": SECRET, "s3_retries": 2}


def stored(s3):
    """Every object in the bucket: {key: (ETag, size)}."""
    client = boto3.client("s3", endpoint_url=s3["s3_endpoint_url"], aws_access_key_id="test", aws_secret_access_key=SECRET,
                          region_name="us-east-1")
    return dict((o["Key"], (o["ETag"], o["Size"])) for o in client.list_objects_v2(Bucket=s3["s3_bucket"]).get("Contents", []))


def report(result):
    """The result without what only the clock changes (ages) and Ansible's own keys."""
    out = dict((k, v) for k, v in result.items() if k not in AGES + ("invocation", "_ansible_no_log", "warnings"))
    out["sets"] = [dict((k, v) for k, v in s.items() if k not in AGES) for s in result["sets"]]
    if out.get("last_good"):
        out["last_good"] = dict((k, v) for k, v in out["last_good"].items() if k not in AGES)
    return out


def test_info_twice_same_report_nothing_changed(run_module_result, bucket, tmp_path):
    """The daily check reads the backup report on every run: it never changes anything (changed=false both times, the
    bucket untouched), reports the same sets, and rewrites the metrics file with the same content. Check mode reports
    the same and writes no metrics."""
    cfg = tmp_path / "etc-mcp"
    cfg.mkdir()
    (cfg / "platform.env").write_text("VERSION=2.4.0\n")
    proc, made = run_module_result("mcp_backup", dict(bucket, components=["config"], config_paths=[str(cfg)], schedule_class="daily",
                                                      platform_env=str(cfg / "platform.env"), label="nightly"))
    assert proc.returncode == 0 and made["changed"] is True, proc.stdout + proc.stderr
    proc, verified = run_module_result("mcp_backup", dict(bucket, state="verified"))
    assert proc.returncode == 0 and verified["verification"]["ok"] is True, proc.stdout + proc.stderr
    objects = stored(bucket)
    metrics = tmp_path / "textfile" / "mcp_backup.prom"
    args = dict(bucket, metrics_file=str(metrics), max_age=3600)

    proc, checked = run_module_result("mcp_backup_info", args, "--check")
    assert proc.returncode == 0 and checked["changed"] is False, proc.stdout + proc.stderr
    assert checked["metrics_written"] is False and not metrics.exists()

    proc, first = run_module_result("mcp_backup_info", args)
    assert proc.returncode == 0 and first["changed"] is False, proc.stdout + proc.stderr
    assert first["count"] == 1 and first["sets"][0]["id"] == made["set_id"] and first["sets"][0]["label"] == "nightly"
    assert first["sets"][0]["verification"] == "ok" and first["newest_good"] == {"daily": made["set_id"]}
    assert first["stale"] is False and first["incomplete_sets"] == [] and first["metrics_written"] is True
    written = metrics.read_bytes()
    assert b'mcp_backup_sets{target="s3://%s/prod/backups"} 1' % bucket["s3_bucket"].encode() in written

    proc, second = run_module_result("mcp_backup_info", args)
    assert proc.returncode == 0 and second["changed"] is False, proc.stdout + proc.stderr
    assert report(second) == report(first)
    assert report(dict(checked, metrics_written=True)) == report(first)
    assert metrics.read_bytes() == written
    assert stored(bucket) == objects, "mcp_backup_info wrote to the bucket"
