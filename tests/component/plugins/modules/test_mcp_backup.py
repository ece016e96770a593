# -*- coding: utf-8 -*-
"""mcp_backup end to end: the real ``ansible`` CLI runs the module (``run_module_result``) against a moto S3 server
(``moto``); tests/component/conftest.py. Bad input and the local target are in
tests/component/plugins/module_utils/test_backup_modules.py, the engine against PostgreSQL in test_backup_engine.py."""
from __future__ import absolute_import, division, print_function

import hashlib
import io
import tarfile
import time
import uuid

import pytest

boto3 = pytest.importorskip("boto3")
zstandard = pytest.importorskip("zstandard")

SECRET = "Zz-s3-secret-run-twice"
PREFIX = "prod/backups"


@pytest.fixture
def bucket(moto):
    """The module's S3 options for a new, empty bucket on the moto server."""
    name = "mcp-twice-%s" % uuid.uuid4().hex[:10]
    boto3.client("s3", endpoint_url=moto, aws_access_key_id="test", aws_secret_access_key=SECRET,
                 region_name="us-east-1").create_bucket(Bucket=name)
    return {"s3_endpoint_url": moto, "s3_bucket": name, "s3_prefix": PREFIX, "s3_access_key": "test", "s3_secret_key": SECRET,
            "s3_retries": 2}


def stored(s3):
    """Every object in the bucket: {key: bytes}."""
    client = boto3.client("s3", endpoint_url=s3["s3_endpoint_url"], aws_access_key_id="test", aws_secret_access_key=SECRET,
                          region_name="us-east-1")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3["s3_bucket"]).get("Contents", [])]
    return dict((k, client.get_object(Bucket=s3["s3_bucket"], Key=k)["Body"].read()) for k in keys)


def of_set(objects, set_id):
    return dict((k, v) for k, v in objects.items() if k.startswith("%s/%s/" % (PREFIX, set_id)))


def config_files(blob):
    """The regular files of a config component object (zstd-compressed GNU tar): {name: bytes}."""
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob)).read()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return dict((m.name.lstrip("/"), tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile())


@pytest.fixture
def config_dir(tmp_path):
    cfg = tmp_path / "etc-mcp"
    cfg.mkdir()
    (cfg / "platform.env").write_text("VERSION=2.4.0\nDATABASE_URL=postgresql://mcp@db/mcp\n")
    return cfg


def create(run_module_result, bucket, config_dir, **kw):
    args = dict(bucket, components=["config"], config_paths=[str(config_dir)], platform_env=str(config_dir / "platform.env"), **kw)
    proc, result = run_module_result("mcp_backup", args)
    assert proc.returncode == 0 and result["changed"] is True, proc.stdout + proc.stderr
    return result


def test_present_twice_adds_a_second_set_by_design(run_module_result, bucket, config_dir):
    """state=present is documented as not idempotent (attributes.idempotent: partial): every nightly run must leave a
    new restorable set. The run-twice guarantee here is that the second run adds one and leaves the first byte for byte."""
    first = create(run_module_result, bucket, config_dir)
    objects = stored(bucket)
    comp = first["manifest"]["components"]["config"]
    blob = objects["%s/%s" % (PREFIX, comp["key"])]
    assert hashlib.sha256(blob).hexdigest() == comp["sha256"] and len(blob) == comp["compressed_size"]
    files = config_files(blob)
    assert [v for k, v in files.items() if k.endswith("etc-mcp/platform.env")] == [(config_dir / "platform.env").read_bytes()]
    assert first["manifest"]["platform_version"] == "2.4.0"

    second = create(run_module_result, bucket, config_dir)
    assert second["set_id"] != first["set_id"]
    after = stored(bucket)
    assert of_set(after, first["set_id"]) == of_set(objects, first["set_id"])
    assert sorted(set(k.split("/")[2] for k in after)) == sorted([first["set_id"], second["set_id"]])


def test_prune_twice_deletes_expired_set_then_unchanged(run_module_result, bucket, config_dir):
    """Retention runs after every backup: a second prune with nothing newly expired must delete nothing, and the set
    it keeps (the newest full one) must stay intact. Check mode lists the deletion and deletes nothing."""
    old = create(run_module_result, bucket, config_dir)
    new = create(run_module_result, bucket, config_dir)
    window = 0.00001  # days (0.864 s): the first set is out of its window by the time the second one is written
    assert time.time() - old["manifest"]["started_at"] > window * 86400
    before = stored(bucket)
    assert of_set(before, old["set_id"]) and of_set(before, new["set_id"])
    args = dict(bucket, state="pruned", retention={"manual": window})

    proc, result = run_module_result("mcp_backup", args, "--check")
    assert proc.returncode == 0 and result["changed"] is True, proc.stdout + proc.stderr
    assert [d["id"] for d in result["prune"]["delete"]] == [old["set_id"]]
    assert stored(bucket) == before

    proc, result = run_module_result("mcp_backup", args)
    assert proc.returncode == 0 and result["changed"] is True, proc.stdout + proc.stderr
    assert [d["id"] for d in result["prune"]["delete"]] == [old["set_id"]]
    assert "older than manual window" in result["prune"]["delete"][0]["reason"]
    assert [k["id"] for k in result["prune"]["keep"]] == [new["set_id"]]
    assert "newest full set" in result["prune"]["keep"][0]["reasons"]
    kept = stored(bucket)
    assert of_set(kept, old["set_id"]) == {}
    assert kept == of_set(before, new["set_id"])

    proc, again = run_module_result("mcp_backup", args)
    assert proc.returncode == 0 and again["changed"] is False, proc.stdout + proc.stderr
    assert again["prune"]["delete"] == [] and [k["id"] for k in again["prune"]["keep"]] == [new["set_id"]]
    assert stored(bucket) == kept
