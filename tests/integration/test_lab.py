"""The lab is real: separate hosts over SSH, each part answering as the platform contract says, faults on demand."""
import asyncio
import json
import os
import socket
import urllib.request
import uuid

import pytest
from conftest import MCP_HOSTS, PG_NODES, adhoc, host_path, pg_dsn, pg_roles, wait_until


def ssh_run(lab, host, command):
    """What the host's operator sees over SSH (the lab's own key and known_hosts, as the inventory uses them)."""
    import subprocess
    key = "%s/ssh/id_ed25519" % lab["lab_dir"]
    known = "%s/ssh/known_hosts" % lab["lab_dir"]
    return subprocess.run(["ssh", "-i", key, "-o", "UserKnownHostsFile=" + known, "-o", "StrictHostKeyChecking=yes",
                           "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "%s@%s" % (lab["lab_ssh_user"], lab["hosts"][host]),
                           command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60, check=False)


def tcp_ok(addr, port, timeout=2.0):
    try:
        with socket.create_connection((addr, port), timeout=timeout):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("host", MCP_HOSTS + PG_NODES)
def test_each_host_is_its_own_machine_over_ssh(lab, host):
    """Own hostname and root filesystem (no checkout, no controller venv), a non-root user with sudo."""
    res = ssh_run(lab, host, "hostname; id -un; sudo -n id -un; test -e %s && echo SEES-CONTROLLER || echo own-root" % lab["lab_dir"])
    assert res.returncode == 0, res.stdout
    assert res.stdout.split() == [host, lab["lab_ssh_user"], "root", "own-root"]


def test_modules_run_under_the_node_venv_not_the_controllers_python(lab):
    """The inventory's interpreter is the venv the node role made on each host; the libraries import there."""
    got = adhoc("ansible.builtin.command", {"argv": ["/opt/mcp-platform/venv/bin/python", "-c",
                "import sys, boto3, zstandard, psycopg2, docker; print(sys.prefix)"]}, pattern="managed_nodes")
    assert sorted(got) == sorted(MCP_HOSTS + PG_NODES)
    for host, r in got.items():
        assert r.get("rc") == 0, (host, r.get("stdout"), r.get("stderr"))
        assert r["stdout"].strip() == "/opt/mcp-platform/venv"
    facts = adhoc("ansible.builtin.setup", {"filter": ["ansible_python"]}, pattern="mcp_hosts")
    for host, r in facts.items():
        assert r["ansible_facts"]["ansible_python"]["executable"] == "/opt/mcp-platform/venv/bin/python", host


def test_become_is_exercised(lab):
    """Tasks run as root through sudo; without become they are the SSH user."""
    plain = adhoc("ansible.builtin.command", {"argv": ["id", "-un"]}, pattern="mcp-1", extra=["-e", "ansible_become=false"])
    become = adhoc("ansible.builtin.command", {"argv": ["id", "-un"]}, pattern="mcp-1")
    assert plain["mcp-1"]["stdout"] == lab["lab_ssh_user"]
    assert become["mcp-1"]["stdout"] == "root"


def test_each_engine_holds_only_its_own_hosts_replicas(lab, engines):
    for host in MCP_HOSTS:
        ctrs = engines.containers(host)
        assert ctrs, host
        assert {c.labels["io.mcp-platform.host"] for c in ctrs.values()} == {host}
        assert sorted(c.labels["io.mcp-platform.service"] for c in ctrs.values()) == sorted(lab["lab_services"] * 2)
        for c in ctrs.values():
            assert c.attrs["State"]["Health"]["Status"] == "healthy", c.name
            binding = c.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]
            assert binding["HostIp"] == lab["hosts"][host], (c.name, binding)


def test_registry_image_pulls_through_a_hosts_engine(lab, engines):
    ref = "%s/mcp-platform/filesystem" % lab["registry"]
    image = engines["mcp-1"].images.pull(ref, tag=lab["lab_initial_version"])
    assert (image.labels or {}).get("io.mcp-platform.version") == lab["lab_initial_version"]


def test_every_registry_image_is_the_service_and_version_it_is_tagged(lab, engines):
    """Each tag is its own build (an image cache that ignored build args once made every tag the first one built)."""
    seen = {}
    for svc in lab["lab_services"]:
        for ver in lab["lab_versions"]:
            image = engines["mcp-3"].images.pull("%s/mcp-platform/%s" % (lab["registry"], svc), tag=ver)
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


@pytest.mark.parametrize("host", MCP_HOSTS)
@pytest.mark.parametrize("service", ["filesystem", "git"])
def test_mcp_initialize_through_each_gateway(lab, host, service):
    url = "http://%s:%d/mcp/%s/mcp" % (lab["hosts"][host], lab["lab_gateway_http_port"], service)
    init, tools = _mcp_initialize(url)
    with open(host_path(host, "/etc/mcp/platform.env")) as f:
        deployed = [line.split("=", 1)[1].strip() for line in f if line.startswith("VERSION=")][0]
    assert init.server_info.name == "mcp-%s" % service
    assert init.server_info.version == deployed
    assert init.protocol_version
    assert len(tools.tools) >= 1


def test_row_written_on_primary_is_read_on_replica_across_the_bridge(lab):
    import psycopg2
    marker = "lab-%s" % uuid.uuid4()
    roles = pg_roles()
    primary = [n for n, r in roles.items() if r == "primary"]
    replica = [n for n, r in roles.items() if r == "replica"]
    assert len(primary) == 1 and len(replica) == 1, roles
    conn = psycopg2.connect(pg_dsn(primary[0]))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("create table if not exists lab_probe (marker text primary key, at timestamptz default now())")
        cur.execute("insert into lab_probe (marker) values (%s)", (marker,))
        cur.execute("select client_addr::text, state from pg_stat_replication")
        assert (lab["hosts"][replica[0]], "streaming") in [(a.split("/")[0], s) for a, s in cur.fetchall()]
    conn.close()

    def replicated():
        with psycopg2.connect(pg_dsn(replica[0])) as rconn, rconn.cursor() as cur:
            cur.execute("select to_regclass('lab_probe') is not null")
            if cur.fetchone()[0]:
                cur.execute("select marker from lab_probe where marker = %s", (marker,))
                return cur.fetchone()
    assert wait_until(replicated, timeout=10, interval=0.1) == (marker,)


def test_platform_database_is_seeded_and_passwords_are_checked(lab):
    import psycopg2
    primary = [n for n, r in pg_roles().items() if r == "primary"][0]
    with psycopg2.connect(pg_dsn(primary, user=lab["lab_db_user"], dbname=lab["lab_db_name"])) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from tools")
        assert cur.fetchone()[0] > 0
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(pg_dsn(primary, user=lab["lab_db_user"], password="wrong", dbname=lab["lab_db_name"]))


def test_s3_put_and_get_on_the_infrastructure_address(lab):
    import boto3
    s3 = boto3.client("s3", endpoint_url=lab["s3_endpoint"], region_name="us-east-1",
                      aws_access_key_id=lab["lab_s3_access_key"], aws_secret_access_key=lab["lab_s3_secret_key"])
    key = "lab-test/%s" % uuid.uuid4()
    body = uuid.uuid4().bytes * 1000
    s3.put_object(Bucket=lab["lab_s3_bucket"], Key=key, Body=body)
    try:
        assert s3.get_object(Bucket=lab["lab_s3_bucket"], Key=key)["Body"].read() == body
    finally:
        s3.delete_object(Bucket=lab["lab_s3_bucket"], Key=key)


def test_prometheus_reports_every_gateway_up(lab):
    url = "http://%s:%d/api/v1/query?query=up%%7Bjob%%3D%%22mcp-gateway%%22%%7D" % (lab["infra"], lab["lab_prometheus_port"])

    def all_up():
        with urllib.request.urlopen(url, timeout=5) as r:
            result = json.load(r)["data"]["result"]
        up = {s["metric"]["instance"]: s["value"][1] for s in result}
        return up if len(up) == len(MCP_HOSTS) and all(v == "1" for v in up.values()) else None
    up = wait_until(all_up, timeout=30, interval=1, what="every gateway up in Prometheus")
    assert set(up) == {"%s:%d" % (lab["hosts"][h], lab["lab_gateway_admin_port"]) for h in MCP_HOSTS}


def test_a_cut_drops_traffic_between_two_hosts_only_and_heals(lab, lab_host):
    """The partition is on the network: mcp-1 loses pg-1, mcp-2 still has it, the controller still has both."""
    probe = ["python3", "-c", "import socket,sys; socket.create_connection((sys.argv[1], 5432), timeout=2); print('ok')",
             lab["hosts"]["pg-1"]]
    assert lab_host.execute("mcp-1", probe, check=False).stdout.strip() == "ok"
    lab_host.cut("mcp-1", "pg-1")
    assert lab_host.execute("mcp-1", probe, check=False).returncode != 0
    assert lab_host.execute("mcp-2", probe, check=False).stdout.strip() == "ok"
    assert tcp_ok(lab["hosts"]["pg-1"], 5432) and tcp_ok(lab["hosts"]["mcp-1"], 22)
    lab_host.cut("controller", "mcp-3")
    assert not tcp_ok(lab["hosts"]["mcp-3"], 22)
    # the infrastructure is another address: mcp-3 still reaches the registry
    reg = ["python3", "-c", "import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1], timeout=3).status)",
           "http://%s/v2/" % lab["registry"]]
    assert lab_host.execute("mcp-3", reg, check=False).stdout.strip() == "200"
    lab_host.heal()
    assert lab_host.execute("mcp-1", probe, check=False).stdout.strip() == "ok"
    assert tcp_ok(lab["hosts"]["mcp-3"], 22)


def test_lab_up_heals_a_cut_a_killed_run_left_behind(lab, lab_host):
    """A test run killed mid-partition leaves the nft table in the kernel; the next `up` starts from a healthy lab."""
    from mcplab import net
    lab_host.cut("controller", "mcp-2")
    assert not tcp_ok(lab["hosts"]["mcp-2"], 22)
    assert net.ensure_bridge() is True  # what `lab.py up` runs first
    assert tcp_ok(lab["hosts"]["mcp-2"], 22)
    assert net.load_faults() == {"cuts": []}


def test_a_killed_host_is_gone_and_comes_back_serving(lab, lab_host, engines):
    """Every process of the host dies at once; at boot its init brings the engine, replicas and gateway back."""
    addr, port = lab["hosts"]["mcp-3"], lab["lab_gateway_http_port"]

    def macs():
        with open("/sys/class/net/%s/address" % lab["lab_bridge"]) as f:
            bridge = f.read().strip()
        return bridge, lab_host.execute("mcp-3", ["cat", "/sys/class/net/eth0/address"]).stdout.strip()
    before = macs()
    lab_host.kill("mcp-3")
    assert not tcp_ok(addr, 22) and not tcp_ok(addr, port)
    lab_host.boot("mcp-3")

    def serving():
        try:
            with urllib.request.urlopen("http://%s:%d/mcp/git/health" % (addr, port), timeout=3) as r:
                return r.status == 200
        except OSError:
            return False
    wait_until(serving, timeout=60, what="mcp-3's gateway serving git again")
    # like a real NIC: the host's MAC and the controller's survive the reboot, so no ARP cache goes stale
    assert macs() == before
    engines._clients.pop("mcp-3", None)
    assert all(c.status == "running" for c in engines.containers("mcp-3").values())


def test_lab_refuses_an_address_or_namespace_it_does_not_own(lab):
    """Faults of the lab itself end in one line naming the cause, and nothing of another's is touched."""
    import ipaddress
    import subprocess

    from mcplab import net
    from mcplab.common import LabError
    other = ipaddress.ip_network("10.232.77.0/24")
    subprocess.run(["ip", "link", "add", "mlabtest0", "type", "veth", "peer", "name", "mlabtest1"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", "10.232.77.5/24", "dev", "mlabtest0"], check=True)
        with pytest.raises(LabError, match="overlaps address 10.232.77.5/24 on mlabtest0"):
            net.check_free(other, bridge="mlabnone0")
    finally:
        subprocess.run(["ip", "link", "del", "mlabtest0"], check=False)
    net.check_free()  # the lab's own network is only on its own bridge
    subprocess.run(["ip", "netns", "add", "mcplab-ghost"], check=True)
    try:
        with pytest.raises(LabError, match="ghost: network namespace mcplab-ghost already exists and is not this lab's"):
            net.create_netns("ghost", "10.231.0.250")
        assert os.path.exists("/run/netns/mcplab-ghost")  # left alone
    finally:
        subprocess.run(["ip", "netns", "del", "mcplab-ghost"], check=False)


def test_a_module_without_its_libraries_names_the_package_and_the_role(lab):
    """Under the host's system Python (no venv) a module says what is missing and what installs it."""
    got = adhoc("mcp.platform.mcp_backup_info", {"target": "s3", "s3_bucket": lab["lab_s3_bucket"],
                                                 "s3_endpoint_url": lab["s3_endpoint"]},
                pattern="mcp-1", extra=["-e", "ansible_python_interpreter=/usr/bin/python3"])["mcp-1"]
    assert got.get("failed"), got
    assert "boto3" in got["msg"] and "mcp.platform.node" in got["msg"], got["msg"]
