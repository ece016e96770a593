"""The lab is real: each part answers as the platform contract says (issue 2, item 6)."""
import asyncio
import json
import os
import time
import urllib.request
import uuid

import pytest


def test_registry_image_pulls_through_the_docker_api(lab, docker_client):
    ref = "%s/mcp-platform/filesystem" % lab["registry"]
    image = docker_client.images.pull(ref, tag=lab["lab_initial_version"])
    assert any(t.endswith("filesystem:%s" % lab["lab_initial_version"]) for t in image.tags)
    labels = image.labels or {}
    assert labels.get("io.mcp-platform.version") == lab["lab_initial_version"]


def test_every_registry_image_is_the_service_and_version_it_is_tagged(lab, docker_client):
    """Each tag is its own build (an image cache that ignored build args once made every tag the first one built)."""
    seen = {}
    for svc in lab["lab_services"]:
        for ver in lab["lab_versions"]:
            image = docker_client.images.pull("%s/mcp-platform/%s" % (lab["registry"], svc), tag=ver)
            labels = image.labels or {}
            assert (labels.get("io.mcp-platform.service"), labels.get("io.mcp-platform.version")) == (svc, ver)
            assert "MCP_VERSION=%s" % ver in image.attrs["Config"]["Env"]
            seen[image.id] = (svc, ver)
    assert len(seen) == len(lab["lab_services"]) * len(lab["lab_versions"])


def _mcp_initialize(url):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def go():
        # the SDK yields (read, write) or, in older releases, (read, write, get_session_id)
        async with streamable_http_client(url) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                init = await session.initialize()
                tools = await session.list_tools()
                return init, tools

    return asyncio.run(asyncio.wait_for(go(), 20))


@pytest.mark.parametrize("host", ["mcp-1", "mcp-2", "mcp-3"])
@pytest.mark.parametrize("service", ["filesystem", "git"])
def test_mcp_initialize_through_each_gateway(lab, host, service):
    addr = lab["lab_hosts"][host]
    url = "http://%s:%d/mcp/%s/mcp" % (addr, lab["lab_gateway_http_port"], service)
    init, tools = _mcp_initialize(url)
    with open(os.path.join(lab["lab_dir"], "hosts", host, "etc", "mcp", "platform.env")) as f:
        deployed = [line.split("=", 1)[1].strip() for line in f if line.startswith("VERSION=")][0]
    assert init.server_info.name == "mcp-%s" % service
    assert init.server_info.version == deployed
    assert init.protocol_version
    assert len(tools.tools) >= 1


def test_row_written_on_primary_is_read_on_replica(lab):
    import psycopg2
    marker = "lab-%s" % uuid.uuid4()
    dsn = "host=127.0.0.1 user=postgres dbname=postgres port=%d"
    ports = [lab["lab_postgres_primary_port"], lab["lab_postgres_replica_port"]]
    roles = {}
    for port in ports:
        with psycopg2.connect(dsn % port) as conn, conn.cursor() as cur:
            cur.execute("select pg_is_in_recovery()")
            roles[port] = cur.fetchone()[0]
    primary = [p for p, rec in roles.items() if not rec]
    replica = [p for p, rec in roles.items() if rec]
    assert len(primary) == 1 and len(replica) == 1, roles
    conn = psycopg2.connect(dsn % primary[0])
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("create table if not exists lab_probe (marker text primary key, at timestamptz default now())")
        cur.execute("insert into lab_probe (marker) values (%s)", (marker,))
    conn.close()
    deadline = time.time() + 10
    found = None
    while time.time() < deadline and not found:
        with psycopg2.connect(dsn % replica[0]) as rconn, rconn.cursor() as cur:
            cur.execute("select to_regclass('lab_probe') is not null")
            if cur.fetchone()[0]:
                cur.execute("select marker from lab_probe where marker = %s", (marker,))
                found = cur.fetchone()
        time.sleep(0.1)
    assert found == (marker,)


def test_platform_database_is_seeded(lab):
    import psycopg2
    with psycopg2.connect(host="127.0.0.1", port=lab["lab_postgres_primary_port"], user=lab["lab_db_user"],
                          password=lab["lab_db_password"], dbname=lab["lab_db_name"]) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from tools")
        assert cur.fetchone()[0] > 0
        cur.execute("select count(*) from sessions")
        assert cur.fetchone()[0] > 0


def test_s3_put_and_get(lab):
    import boto3
    s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:%d" % lab["lab_s3_port"], region_name="us-east-1",
                      aws_access_key_id=lab["lab_s3_access_key"], aws_secret_access_key=lab["lab_s3_secret_key"])
    key = "lab-test/%s" % uuid.uuid4()
    body = uuid.uuid4().bytes * 1000
    s3.put_object(Bucket=lab["lab_s3_bucket"], Key=key, Body=body)
    try:
        assert s3.get_object(Bucket=lab["lab_s3_bucket"], Key=key)["Body"].read() == body
    finally:
        s3.delete_object(Bucket=lab["lab_s3_bucket"], Key=key)


def test_prometheus_reports_every_gateway_up(lab):
    url = "http://127.0.0.1:%d/api/v1/query?query=up%%7Bjob%%3D%%22mcp-gateway%%22%%7D" % lab["lab_prometheus_port"]
    deadline = time.time() + 30
    while True:
        with urllib.request.urlopen(url, timeout=5) as r:
            result = json.load(r)["data"]["result"]
        up = {s["metric"]["instance"]: s["value"][1] for s in result}
        if len(up) == len(lab["lab_hosts"]) and all(v == "1" for v in up.values()):
            break
        assert time.time() < deadline, "gateways not all up in Prometheus: %s" % up
        time.sleep(1)
    expected = {"%s:%d" % (a, lab["lab_gateway_admin_port"]) for a in lab["lab_hosts"].values()}
    assert set(up) == expected


def test_every_replica_is_healthy_and_labelled(lab, docker_client):
    ctrs = docker_client.containers.list(filters={"label": ["io.mcp-platform.managed=true", "io.mcp-platform.lab=true"]})
    by_host = {}
    for c in ctrs:
        by_host.setdefault(c.labels["io.mcp-platform.host"], []).append(c)
        assert c.attrs["State"]["Health"]["Status"] == "healthy", c.name
    assert set(by_host) == set(lab["lab_hosts"])
    for host, items in by_host.items():
        services = sorted(c.labels["io.mcp-platform.service"] for c in items)
        assert services == sorted(lab["lab_services"] * 2), (host, services)
