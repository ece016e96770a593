"""mcp_rollout on the lab's engine and gateway, with a fault halfway: the gateway's API goes missing.

The replacement of mcp-3's filesystem replicas starts, the first new replica becomes healthy and is routed by the
real gateway, but the module cannot see the route (its gateway_admin_url answers nothing): it must stop at that
gate naming it, leave the old replicas serving and start nothing more. Running it again with the version the host
ran takes the half-done replica out (drained, so the load generator never sees a failure), and a further run
changes nothing. Check mode plans without touching anything.
"""
import json
import os
import subprocess

import pytest

from conftest import LAB_DIR, ROOT, VENV_BIN
from loadgen import LoadGen, gateway_urls

pytestmark = pytest.mark.lab

HOST, SERVICE = "mcp-3", "filesystem"


def run_module(args, check_mode=False):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_PYTHON_INTERPRETER=os.path.join(VENV_BIN, "python"), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json", MCP_LAB_DIR=LAB_DIR)
    env.pop("ANSIBLE_CONFIG", None)
    argv = [os.path.join(VENV_BIN, "ansible"), "localhost", "-m", "mcp.platform.mcp_rollout", "-a", json.dumps(args)]
    if check_mode:
        argv.append("--check")
    proc = subprocess.run(argv, cwd=os.path.join(ROOT, "tests"), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300, check=False)
    out = proc.stdout
    body = out[out.index("=> {") + 3:] if "=> {" in out else "{}"
    return proc.returncode, out, json.JSONDecoder().raw_decode(body)[0]


def slot_containers(docker_client):
    flt = {"label": ["io.mcp-platform.managed=true", "io.mcp-platform.host=%s" % HOST, "io.mcp-platform.service=%s" % SERVICE]}
    return {c.name: c for c in docker_client.containers.list(all=True, filters=flt)}


def traefik_labels(s):
    return {
        "traefik.enable": "true",
        "traefik.http.routers.%s.rule" % s: "PathPrefix(`/mcp/%s`)" % s,
        "traefik.http.routers.%s.entrypoints" % s: "web",
        "traefik.http.routers.%s.middlewares" % s: "%s-strip" % s,
        "traefik.http.routers.%s.service" % s: s,
        "traefik.http.middlewares.%s-strip.stripprefix.prefixes" % s: "/mcp/%s" % s,
        "traefik.http.services.%s.loadbalancer.server.port" % s: "8080",
        "traefik.http.services.%s.loadbalancer.healthcheck.path" % s: "/health",
        "traefik.http.services.%s.loadbalancer.healthcheck.interval" % s: "1s",
        "traefik.http.services.%s.loadbalancer.healthcheck.timeout" % s: "1s",
    }


def test_gateway_api_lost_halfway_then_recovered(lab, docker_client):
    before = slot_containers(docker_client)
    assert len(before) == 2 and all(c.status == "running" for c in before.values())
    running = {c.labels["io.mcp-platform.version"] for c in before.values()}
    assert len(running) == 1
    old = running.pop()
    new = "1.1.0" if old == "1.0.0" else "1.0.0"
    address = lab["lab_hosts"][HOST]
    args = {"docker_host": lab["docker_host"], "host_label": HOST, "version": new, "replicas": 2,
            "services": [{"name": SERVICE, "image": "%s/mcp-platform/%s:%s" % (lab["registry"], SERVICE, new),
                          "labels": traefik_labels(SERVICE)}],
            "bind_address": address, "env": {"DATABASE_URL": "postgresql://mcp:Hunter2Secret@127.0.0.1:1/mcp"},
            "gateway_admin_url": "http://%s:1" % address, "route_timeout": 3, "stop_timeout": 10}

    # check mode: the plan, and nothing touched
    rc, out, res = run_module(args, check_mode=True)
    assert rc == 0, out[-3000:]
    assert res["changed"] is True
    assert [(s["service"], s["replica"], s["todo"]) for s in res["plan"]] == [(SERVICE, 1, True), (SERVICE, 2, True)]
    assert sorted(slot_containers(docker_client)) == sorted(before)

    gen = LoadGen(gateway_urls([address], [SERVICE], lab["lab_gateway_http_port"]), rate=30.0, max_duration=300,
                  workers_per_url=3).start()
    try:
        # the gateway's API answers nothing: the first new replica is healthy but its route cannot be confirmed
        rc, out, res = run_module(args)
        assert rc != 0
        assert "%s, service %s replica 1 at %s: check 'gateway route' failed" % (HOST, SERVICE, new) in res["msg"], out[-3000:]
        assert res["failed_checks"] == ["gateway route"]
        assert "Hunter2Secret" not in out
        during = slot_containers(docker_client)
        half = "%s-%s-1-v%s" % (HOST, SERVICE, new)
        assert sorted(during) == sorted(list(before) + [half])      # replica 2 was not started
        for name in before:                                          # the old replicas were not touched
            assert during[name].id == before[name].id and during[name].status == "running"

        # recovery: back to the version the host ran, with the real gateway API
        args_back = dict(args, version=old, gateway_admin_url="http://%s:%d" % (address, lab["lab_gateway_admin_port"]),
                         route_timeout=30,
                         services=[{"name": SERVICE, "image": "%s/mcp-platform/%s:%s" % (lab["registry"], SERVICE, old),
                                    "labels": traefik_labels(SERVICE)}])
        rc, out, res = run_module(args_back)
        assert rc == 0, out[-3000:]
        assert res["changed"] is True
        assert [r["name"] for r in res["replaced"][0]["retired"]] == [half]
        assert res["replaced"][0]["retired"][0]["drained"] is True
    finally:
        stats = gen.stop()
    after = slot_containers(docker_client)
    assert {n: c.id for n, c in after.items()} == {n: c.id for n, c in before.items()}
    assert stats["requests"] > 50
    assert stats["failed"] == 0, stats["failures"][:5]

    rc, out, res = run_module(args_back)
    assert rc == 0 and res["changed"] is False and res["replaced"] == [], out[-2000:]
