"""mcp_rollout on a lab host's engine and gateway, with a fault halfway: the gateway's API goes missing.

The module runs ON the host (mcp-3), over SSH with become, under the node venv, through the lab inventory: like
the update role's task. The host is the right place, not the controller: the engine is a unix socket on the host
(unix:///var/run/docker.sock), the new replica is probed where it listens, and the gateway's API is the host's
own; the controller reaches none of the engine except through the lab's bind mount, which no production
controller has.

The replacement of mcp-3's filesystem replicas starts, the first new replica becomes healthy and is routed by the
real gateway, but the module cannot see the route (its gateway_admin_url answers nothing): it must stop at that
gate naming it, leave the old replicas serving and start nothing more. Running it again with the version the host
ran takes the half-done replica out (drained, so the load generator never sees a failure), and a further run
changes nothing. Check mode plans without touching anything.
"""
import json

import pytest
from conftest import adhoc_one
from loadgen import LoadGen, gateway_urls

pytestmark = pytest.mark.lab

HOST, SERVICE = "mcp-3", "filesystem"
# the host's own engine, at its production path (the role default update_docker_host)
DOCKER_HOST = "unix:///var/run/docker.sock"


def run_module(args, check_mode=False):
    """mcp.platform.mcp_rollout on HOST (from the installed collection): (failed, the result as JSON text, result)."""
    res = adhoc_one("mcp.platform.mcp_rollout", args, host=HOST, check=check_mode)
    return bool(res.get("failed") or res.get("unreachable")), json.dumps(res), res


def slot_containers(engines):
    return engines.containers(HOST, service=SERVICE)


# mcp_container_labels_extra of inventories/lab/group_vars/mcp_hosts/platform.yml, which the deploy role adds
EXTRA_LABELS = {"io.mcp-platform.lab": "true"}


def deployed_definition(container):
    """The definition the deploy role gave the replica (DATABASE_URL, data mount; its labels are the gateway's router
    labels, gateway_router, plus EXTRA_LABELS), read back from the engine.

    mcp_rollout records a digest of the definition; a run with the same one recognises the deployed replicas as its
    own (a different one would replace them too).
    """
    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"] or [] if "=" in e)
    data = [m["Source"] for m in container.attrs["Mounts"] if m["Destination"] == "/data"]
    return {"env": {"DATABASE_URL": env["DATABASE_URL"]}, "volumes": ["%s:/data" % data[0]]}


def test_gateway_api_lost_halfway_then_recovered(lab, engines):
    before = slot_containers(engines)
    assert len(before) == 2 and all(c.status == "running" for c in before.values())
    running = {c.labels["io.mcp-platform.version"] for c in before.values()}
    assert len(running) == 1
    old = running.pop()
    definition = deployed_definition(sorted(before.values(), key=lambda c: c.name)[0])
    assert any(k.startswith("traefik.") for k in sorted(before.values(), key=lambda c: c.name)[0].labels)
    secret = definition["env"]["DATABASE_URL"].split(":")[2].split("@")[0]
    new = "1.1.0" if old == "1.0.0" else "1.0.0"
    address = lab["lab_hosts"][HOST]
    args = {"docker_host": DOCKER_HOST, "host_label": HOST, "version": new, "replicas": 2,
            "services": [{"name": SERVICE, "image": "%s/mcp-platform/%s:%s" % (lab["registry"], SERVICE, new)}],
            "labels": EXTRA_LABELS, "gateway_router": True,
            "bind_address": address, "env": definition["env"], "volumes": definition["volumes"],
            "gateway_admin_url": "http://%s:1" % address, "route_timeout": 3, "stop_timeout": 10}

    # check mode: the plan, and nothing touched
    failed, out, res = run_module(args, check_mode=True)
    assert not failed, out[-3000:]
    assert res["changed"] is True
    assert [(s["service"], s["replica"], s["todo"]) for s in res["plan"]] == [(SERVICE, 1, True), (SERVICE, 2, True)]
    assert sorted(slot_containers(engines)) == sorted(before)

    gen = LoadGen(gateway_urls([address], [SERVICE], lab["lab_gateway_http_port"]), rate=30.0, max_duration=300,
                  workers_per_url=3).start()
    try:
        # the gateway's API answers nothing: the first new replica is healthy but its route cannot be confirmed
        failed, out, res = run_module(args)
        assert failed
        assert "%s, service %s replica 1 at %s: check 'gateway route' failed" % (HOST, SERVICE, new) in res["msg"], out[-3000:]
        assert res["failed_checks"] == ["gateway route"]
        assert secret not in out
        during = slot_containers(engines)
        half = "%s-%s-1-v%s" % (HOST, SERVICE, new)
        assert sorted(during) == sorted(list(before) + [half])      # replica 2 was not started
        for name in before:                                          # the old replicas were not touched
            assert during[name].id == before[name].id and during[name].status == "running"

        # recovery: back to the version the host ran, with the real gateway API
        args_back = dict(args, version=old, gateway_admin_url="http://%s:%d" % (address, lab["lab_gateway_admin_port"]),
                         route_timeout=30,
                         services=[{"name": SERVICE, "image": "%s/mcp-platform/%s:%s" % (lab["registry"], SERVICE, old)}])
        failed, out, res = run_module(args_back)
        assert not failed, out[-3000:]
        assert res["changed"] is True
        assert [r["name"] for r in res["replaced"][0]["retired"]] == [half]
        assert res["replaced"][0]["retired"][0]["drained"] is True
    finally:
        stats = gen.stop()
    after = slot_containers(engines)
    assert {n: c.id for n, c in after.items()} == {n: c.id for n, c in before.items()}
    assert stats["requests"] > 50
    assert stats["failed"] == 0, stats["failures"][:5]

    failed, out, res = run_module(args_back)
    assert not failed and res["changed"] is False and res["replaced"] == [], out[-2000:]
