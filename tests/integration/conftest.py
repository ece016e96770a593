"""Fixtures for tests against the running lab (make lab-up). Nothing here is a stand-in.

The lab's hosts are real hosts reached over SSH (inventories/lab); the collection under test is the built
tarball installed in .build/installed (make install), so a file the tarball misses is missing here too.
Tests see a host the way its operator would (SSH, its gateway, its engine's API) and, to assert on the real
effect, through the lab's own view: each host's engine socket and its /etc/mcp and /var/lib/mcp folders are
bind mounts the controller can read, and `lab_host.execute` runs a command on a host as root.
"""
import json
import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "hack"))
# the lab's folders, inventory and values come from the lab's own code: one definition for lab.py, tests and bench
from mcplab import hosts as lab_hosts_mod  # noqa: E402
from mcplab import net as lab_net  # noqa: E402
from mcplab.common import CFG, INVENTORY, ROOT  # noqa: E402
from mcplab.common import LAB as LAB_DIR
from mcplab.common import lab_hosts as _inventory_hosts

VENV_BIN = os.path.join(ROOT, ".venv", "bin")
INSTALLED = os.path.join(ROOT, ".build", "installed")
HOSTS = _inventory_hosts()
MCP_HOSTS = [h for h, i in HOSTS.items() if i["kind"] == "mcp"]
PG_NODES = [h for h, i in HOSTS.items() if i["kind"] == "pg"]
INFRA = CFG["lab_infra_address"]
# host folder (production path) -> the lab folder bind-mounted there
HOST_DIRS = {"/etc/mcp": "etc-mcp", "/var/lib/mcp": "var-lib-mcp", "/var/lib/postgresql": "postgresql"}


def pytest_collection_modifyitems(items):
    for item in items:
        if "/tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.lab)


def host_path(host, path):
    """Where the controller reads a host's own file (a production path on the host)."""
    for prefix, sub in HOST_DIRS.items():
        if path == prefix or path.startswith(prefix + "/"):
            return os.path.join(LAB_DIR, "hosts", host, sub, path[len(prefix):].lstrip("/"))
    raise ValueError("%s is not one of the host folders the lab can read from outside (%s)" % (path, ", ".join(HOST_DIRS)))


def pg_dsn(node, user="postgres", password=None, dbname="postgres"):
    password = password if password is not None else (CFG["lab_pg_admin_password"] if user == "postgres" else CFG["lab_db_password"])
    return "host=%s port=5432 user=%s password=%s dbname=%s connect_timeout=5" % (HOSTS[node]["address"], user, password, dbname)


def pg_roles():
    """{node: 'primary' | 'replica' | 'down'} as the controller sees them."""
    import psycopg2
    out = {}
    for node in PG_NODES:
        try:
            conn = psycopg2.connect(pg_dsn(node))
            try:
                with conn.cursor() as cur:
                    cur.execute("select pg_is_in_recovery()")
                    out[node] = "replica" if cur.fetchone()[0] else "primary"
            finally:
                conn.close()
        except psycopg2.Error:
            out[node] = "down"
    return out


@pytest.fixture(scope="session")
def lab():
    down = [h for h in HOSTS if not lab_hosts_mod.is_up(h)]
    if down:
        pytest.fail("the lab is not up (%s down): run `make lab-up` first" % ", ".join(down))
    if not os.path.isdir(os.path.join(INSTALLED, "ansible_collections", "mcp", "platform")):
        pytest.fail("the collection is not installed in %s: run `make install` first" % INSTALLED)
    cfg = dict(CFG)
    cfg.update(lab_dir=LAB_DIR, infra=INFRA, registry="%s:%d" % (INFRA, CFG["lab_registry_port"]),
               s3_endpoint="http://%s:%d" % (INFRA, CFG["lab_s3_port"]), hosts={h: i["address"] for h, i in HOSTS.items()},
               lab_hosts={h: HOSTS[h]["address"] for h in MCP_HOSTS}, mcp_hosts=list(MCP_HOSTS), pg_nodes=list(PG_NODES))
    return cfg


class Engines:
    """One Docker SDK client per MCP host, on that host's own engine (its socket, as the lab sees it)."""

    def __init__(self):
        self._clients = {}

    def __getitem__(self, host):
        import docker
        if host not in self._clients:
            self._clients[host] = docker.DockerClient(base_url="unix://" + lab_hosts_mod.engine_socket(host), timeout=60)
        return self._clients[host]

    def containers(self, host, **filters):
        """The host's platform containers by name (all states), optionally filtered by more labels."""
        labels = ["io.mcp-platform.managed=true"] + ["io.mcp-platform.%s=%s" % kv for kv in filters.items()]
        return {c.name: c for c in self[host].containers.list(all=True, filters={"label": labels})}

    def reset(self, host):
        """Forget the host's client (after a reboot its engine is a new process on a new socket)."""
        client = self._clients.pop(host, None)
        if client:
            client.close()

    def close(self):
        for c in self._clients.values():
            c.close()


@pytest.fixture(scope="session")
def engines(lab):
    e = Engines()
    yield e
    e.close()


def ansible_env(extra=None):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), MCP_LAB_DIR=LAB_DIR,
               ANSIBLE_COLLECTIONS_PATH=INSTALLED, ANSIBLE_FORCE_COLOR="0")
    env.pop("ANSIBLE_PYTHON_INTERPRETER", None)
    env.update(extra or {})
    return env


def run_playbook(playbook, *extra, check=True, env=None, timeout=1800):
    """Run one of the collection's playbooks (by FQCN, from the installed tarball) against the lab inventory."""
    name = playbook[:-4] if playbook.endswith(".yml") else playbook
    target = name if name.startswith("/") or "." in name else "mcp.platform." + name
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", INVENTORY, target] + list(extra)
    res = subprocess.run(argv, cwd=ROOT, env=ansible_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         check=False, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError("%s failed (rc %d):\n%s" % (playbook, res.returncode, res.stdout[-6000:]))
    return res


@pytest.fixture(scope="session")
def playbook():
    return run_playbook


def adhoc(module, args, pattern="localhost", become=None, check=False, extra=()):
    """One module call through `ansible` (json callback) against the lab inventory: {host: result}."""
    argv = [os.path.join(VENV_BIN, "ansible"), "-i", INVENTORY, pattern, "-m", module, "-a", json.dumps(args)]
    if check:
        argv.append("--check")
    argv += list(extra)
    env = ansible_env({"ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"})
    res = subprocess.run(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    try:
        out = json.loads(res.stdout[res.stdout.index("{"):])
    except ValueError:
        raise AssertionError("ansible %s printed no JSON (rc %d):\n%s" % (module, res.returncode, res.stdout[-3000:]))
    return out["plays"][0]["tasks"][0]["hosts"]


def adhoc_one(module, args, host="localhost", **kw):
    return adhoc(module, args, pattern=host, **kw)[host]


class LabHost:
    """Power and faults of the lab's hosts, for one test: everything it broke is repaired at teardown."""

    def __init__(self):
        self.killed = set()
        self.faulted = False

    def execute(self, host, argv, **kw):
        return lab_hosts_mod.execute(host, argv, **kw)

    def kill(self, host):
        self.killed.add(host)
        lab_hosts_mod.kill(host)

    def boot(self, host):
        lab_hosts_mod.boot(host, HOSTS[host])
        self.killed.discard(host)

    def cut(self, a, b):
        self.faulted = True
        lab_net.cut(a, b, HOSTS)

    def isolate(self, host):
        self.faulted = True
        lab_net.isolate(host, HOSTS)

    def heal(self, host=None):
        lab_net.heal(HOSTS, host)

    def wait_serving(self, host, timeout=90):
        """Until every service answers 200 through the host's gateway (after a boot its init restarts them)."""
        import urllib.request

        def serving():
            for svc in CFG["lab_services"]:
                url = "http://%s:%d/mcp/%s/health" % (HOSTS[host]["address"], CFG["lab_gateway_http_port"], svc)
                try:
                    with urllib.request.urlopen(url, timeout=3) as r:
                        if r.status != 200:
                            return False
                except OSError:
                    return False
            return True
        wait_until(serving, timeout=timeout, what="%s serving every service through its gateway" % host)

    def repair(self):
        if self.faulted:
            lab_net.heal(HOSTS)
        for host in sorted(self.killed):
            if not lab_hosts_mod.is_up(host):
                lab_hosts_mod.boot(host, HOSTS[host])
        self.killed.clear()


@pytest.fixture
def lab_host(lab):
    h = LabHost()
    yield h
    h.repair()


def wait_until(predicate, timeout=60, interval=0.5, what="the condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("%s did not hold within %ss (last: %r)" % (what, timeout, last))
