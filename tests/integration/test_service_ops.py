"""service.yml and restart.yml (the manual's mcp start/stop/restart and Service Restart Runbook) on the lab.

The playbooks reach each host over SSH and act on that host's own engine; the tests check the effect on the
host's engine (the `engines` fixture) and through the host's gateway. Rolling restarts run under the load
generator and must not fail a request. Stops are checked on what the engine reports (exit code 0 after a
graceful SIGTERM, 137 after --force) and through the gateway. Every test leaves the replicas it touched running
and healthy.
"""
import time
import urllib.error
import urllib.request

import docker.errors
import pytest
from conftest import run_playbook
from loadgen import LoadGen, gateway_urls

pytestmark = pytest.mark.lab

SERVICES = ["filesystem", "git"]


def replicas(engines, host, service):
    """{name: container} of one host's replicas of one service, on that host's own engine."""
    return engines.containers(host, service=service)


def started_at(container):
    container.reload()
    return container.attrs["State"]["StartedAt"]


def gateway_status(lab, host, service):
    url = "http://%s:%d/mcp/%s/version" % (lab["lab_hosts"][host], lab["lab_gateway_http_port"], service)
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_gateway(lab, host, service, status, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline and gateway_status(lab, host, service) != status:
        time.sleep(0.3)
    return gateway_status(lab, host, service)


@pytest.fixture
def running(lab, engines):
    """Whatever a test stops, started again afterwards (mcp start)."""
    yield lab
    if any(c.status != "running" for h in lab["lab_hosts"] for s in SERVICES for c in replicas(engines, h, s).values()):
        run_playbook("service.yml", "-e", "service_action=start")


def test_rolling_restart_without_a_failed_request(running, engines):
    lab = running
    before = {n: (c.id, started_at(c)) for n, c in replicas(engines, "mcp-2", "filesystem").items()}
    untouched = {n: started_at(c) for n, c in replicas(engines, "mcp-2", "git").items()}
    gen = LoadGen(gateway_urls([lab["lab_hosts"]["mcp-2"]], SERVICES, lab["lab_gateway_http_port"]),
                  rate=30.0, max_duration=300, workers_per_url=3).start()
    try:
        res = run_playbook("service.yml", "-e", "service_action=restart", "-e", "services=filesystem", "-e", "service_delay=1",
                           "--limit", "mcp-2")
    finally:
        stats = gen.stop()
    assert stats["requests"] > 100
    assert stats["failed"] == 0, stats["failures"]
    after = {n: (c.id, started_at(c)) for n, c in replicas(engines, "mcp-2", "filesystem").items()}
    assert sorted(after) == sorted(before)                      # the same containers ...
    for name, (cid, t0) in before.items():
        assert after[name][0] == cid and after[name][1] != t0   # ... each restarted
        assert replicas(engines, "mcp-2", "filesystem")[name].attrs["State"]["Health"]["Status"] == "healthy"
    assert {n: started_at(c) for n, c in replicas(engines, "mcp-2", "git").items()} == untouched
    assert "Restart | drain" in res.stdout


def test_graceful_stop_then_start(running, engines):
    lab = running
    run_playbook("service.yml", "-e", "service_action=stop", "-e", "services=git", "-e", "service_stop_timeout=20", "--limit", "mcp-3")
    stopped = replicas(engines, "mcp-3", "git")
    assert len(stopped) == 2
    for c in stopped.values():
        assert c.status == "exited"
        assert c.attrs["State"]["ExitCode"] == 0, "%s was not stopped by its own SIGTERM handler" % c.name
    assert wait_gateway(lab, "mcp-3", "git", 404) in (404, 503)
    assert all(c.status == "running" for c in replicas(engines, "mcp-3", "filesystem").values())

    again = run_playbook("service.yml", "-e", "service_action=stop", "-e", "services=git", "--limit", "mcp-3")
    assert "changed=0" in again.stdout                          # already stopped: nothing to do

    run_playbook("service.yml", "-e", "service_action=start", "-e", "services=git", "--limit", "mcp-3")
    for c in replicas(engines, "mcp-3", "git").values():
        assert c.status == "running"
        assert c.attrs["State"]["Health"]["Status"] == "healthy"
    assert wait_gateway(lab, "mcp-3", "git", 200) == 200


def test_force_stop_kills_at_once(running, engines):
    t0 = time.monotonic()
    run_playbook("service.yml", "-e", "service_action=stop", "-e", "force=true", "-e", "services=filesystem", "--limit", "mcp-3")
    elapsed = time.monotonic() - t0
    for c in replicas(engines, "mcp-3", "filesystem").values():
        assert c.status == "exited"
        assert c.attrs["State"]["ExitCode"] == 137, c.attrs["State"]
    assert elapsed < 60, elapsed


def test_unknown_service_refused_before_anything_changed(running, engines):
    before = {n: started_at(c) for h in running["lab_hosts"] for s in SERVICES for n, c in replicas(engines, h, s).items()}
    res = run_playbook("service.yml", "-e", "service_action=restart", "-e", "services=filesystem,nope", check=False)
    assert res.returncode != 0
    assert "check 'known service' failed: nope not in" in res.stdout, res.stdout[-3000:]
    res = run_playbook("service.yml", "-e", "action=reboot", check=False)
    assert res.returncode != 0
    assert "value of service_action must be one of: start, stop, restart, runbook, got: reboot" in res.stdout
    after = {n: started_at(c) for h in running["lab_hosts"] for s in SERVICES for n, c in replicas(engines, h, s).items()}
    assert after == before


def test_runbook_restarts_and_verifies(running, engines):
    before = {n: started_at(c) for n, c in replicas(engines, "mcp-1", "git").items()}
    res = run_playbook("restart.yml", "-e", "services=git", "--limit", "mcp-1")
    assert "Runbook 2 | show them" in res.stdout
    assert "mcp-1: git healthy after attempt 1" in res.stdout
    after = {n: started_at(c) for n, c in replicas(engines, "mcp-1", "git").items()}
    assert sorted(after) == sorted(before) and all(after[n] != before[n] for n in before)


def test_runbook_escalates_after_three_failed_attempts(lab, engines):
    """A replica that never becomes healthy again: three attempts, then the escalation message, exit non-zero."""
    image = "%s/mcp-platform/filesystem:%s" % (lab["registry"], lab["lab_initial_version"])
    name = "mcp-1-filesystem-9-broken"
    try:
        engines["mcp-1"].containers.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass
    # the lab image's 'unhealthy' behaviour; no gateway labels, so no request is ever routed to it
    engines["mcp-1"].containers.run(image, name=name, detach=True,
                                    environment={"MCP_SERVICE": "filesystem", "MCP_BEHAVIOUR": "unhealthy"},
                                    labels={"io.mcp-platform.managed": "true", "io.mcp-platform.host": "mcp-1",
                                            "io.mcp-platform.service": "filesystem", "io.mcp-platform.replica": "9",
                                            "io.mcp-platform.version": lab["lab_initial_version"], "io.mcp-platform.lab": "true"})
    try:
        res = run_playbook("restart.yml", "-e", "services=filesystem", "-e", "service_wait_timeout=8",
                           "--limit", "mcp-1", check=False)
    finally:
        engines["mcp-1"].containers.get(name).remove(force=True)
    assert res.returncode != 0
    assert res.stdout.count("attempt 3 of 3 failed") == 1, res.stdout[-4000:]
    assert "ESCALATE to the on-call engineer: on mcp-1, service(s) filesystem did not recover after 3 restart attempts" \
        in res.stdout
    # the healthy replicas came back from every attempt
    for c in replicas(engines, "mcp-1", "filesystem").values():
        assert c.status == "running" and c.attrs["State"]["Health"]["Status"] == "healthy"
