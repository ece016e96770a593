"""What the benchmarks share: the lab of real hosts as the inventory describes it, the installed collection, SSH.

Addresses come from inventories/lab/hosts.yml (through hack/mcplab's lab_hosts()) and ports and credentials from
inventories/lab/group_vars/all/lab.yml; nothing here names an address. Playbooks and modules run from the installed
tarball (.build/installed, `make install`) by FQCN, as tests/integration/conftest.py runs them.

A manual script that in production runs on a host runs there over SSH (``SSH``): as the lab's SSH user with sudo,
with the key and known_hosts the lab writes, the way an operator (or Ansible) reaches the host. The lab's backdoor
(``labhosts.execute``: root inside the host's namespaces) is only used to set up or break things the benchmark
needs (a scratch PostgreSQL, a killed primary), never for what is timed.
"""
import os
import shlex
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "hack"))
# the lab's folders, inventory and values: the lab's own definitions, as the integration tests use them
from mcplab import hosts as labhosts  # noqa: E402  pylint: disable=wrong-import-position
from mcplab.common import CFG, INVENTORY, ROOT  # noqa: E402  pylint: disable=wrong-import-position
from mcplab.common import LAB as LAB_DIR
from mcplab.common import lab_hosts as _inventory_hosts  # noqa: E402  pylint: disable=wrong-import-position

VENV_BIN = os.path.join(ROOT, ".venv", "bin")
INSTALLED = os.path.join(ROOT, ".build", "installed")
_HOSTS = _inventory_hosts()
HOSTS = {h: i["address"] for h, i in _HOSTS.items()}
MCP_HOSTS = [h for h, i in _HOSTS.items() if i["kind"] == "mcp"]
PG_NODES = [h for h, i in _HOSTS.items() if i["kind"] == "pg"]
INFRA = CFG["lab_infra_address"]
REGISTRY = "%s:%d" % (INFRA, CFG["lab_registry_port"])
S3_ENDPOINT = "http://%s:%d" % (INFRA, CFG["lab_s3_port"])
with open(os.path.join(INVENTORY, "group_vars", "managed_nodes", "connection.yml")) as _f:
    NODE_PYTHON = yaml.safe_load(_f)["ansible_python_interpreter"]  # the node venv's Python (boto3 is there)
PG_BIN = "/usr/lib/postgresql/%s/bin" % CFG["lab_pg_major"]
PG_DATA = "/var/lib/postgresql/%s/main" % CFG["lab_pg_major"]
# host folder (production path) -> the lab's bind mount of it, which the controller can read
HOST_DIRS = {"/etc/mcp": "etc-mcp", "/var/lib/mcp": "var-lib-mcp", "/var/lib/postgresql": "postgresql"}


def pg_node(role):
    """The node the inventory starts as `role` (primary / replica)."""
    return [n for n in PG_NODES if _HOSTS[n]["vars"].get("mcp_postgres_initial_role") == role][0]


PRIMARY, REPLICA = pg_node("primary"), pg_node("replica")


def host_path(host, path):
    """Where the controller reads or writes a host's own file (a production path under one of HOST_DIRS)."""
    for prefix, sub in HOST_DIRS.items():
        if path == prefix or path.startswith(prefix + "/"):
            return labhosts.hdir(host, sub, path[len(prefix):].lstrip("/"))
    raise ValueError("%s is not in a host folder the controller can reach (%s)" % (path, ", ".join(HOST_DIRS)))


def engine_socket(host):
    return labhosts.engine_socket(host)


def gateway(host):
    return "http://%s:%d" % (HOSTS[host], CFG["lab_gateway_http_port"])


def pg_dsn(node, port=5432, dbname="postgres", user="postgres", password=None, timeout=5):
    password = password if password is not None else (CFG["lab_pg_admin_password"] if user == "postgres" else CFG["lab_db_password"])
    return "host=%s port=%d user=%s password=%s dbname=%s connect_timeout=%d" % (HOSTS[node], port, user, password, dbname, timeout)


def s3_client():
    import boto3
    return boto3.client("s3", endpoint_url=S3_ENDPOINT, region_name="us-east-1",
                        aws_access_key_id=CFG["lab_s3_access_key"], aws_secret_access_key=CFG["lab_s3_secret_key"])


def lab_up():
    down = [h for h in HOSTS if not labhosts.is_up(h)]
    if down:
        raise SystemExit("the lab is not up (%s down): make lab-up" % ", ".join(down))
    if not os.path.isdir(os.path.join(INSTALLED, "ansible_collections", "mcp", "platform")):
        raise SystemExit("the collection is not installed in %s: make install" % INSTALLED)


def import_installed():
    """Make the installed collection's Python (module_utils) importable."""
    if INSTALLED not in sys.path:
        sys.path.insert(0, INSTALLED)


def ansible_env(extra=None):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), MCP_LAB_DIR=LAB_DIR,
               ANSIBLE_COLLECTIONS_PATH=INSTALLED, ANSIBLE_FORCE_COLOR="0")
    env.pop("ANSIBLE_PYTHON_INTERPRETER", None)  # each host's interpreter is the inventory's (the node venv)
    env.update(extra or {})
    return env


def playbook_argv(name, *extra, inventory=INVENTORY):
    """ansible-playbook for one of the collection's playbooks, by FQCN (mcp.platform.<name>)."""
    name = name[:-4] if name.endswith(".yml") else name
    return [os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory, "mcp.platform." + name] + list(extra)


class SSH:
    """Commands on a lab host as the operator runs them: ``ssh <lab_ssh_user>@<address> sudo ...``, over one
    ControlMaster connection per host (as Ansible's ssh connection keeps one). ``close()`` ends the masters."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mcp-bench-ssh-")
        self.used = set()

    def argv(self, host, remote, sudo=True):
        cmd = (["sudo", "-n"] if sudo else []) + list(remote)
        self.used.add(host)
        return ["ssh", "-i", os.path.join(LAB_DIR, "ssh", "id_ed25519"), "-o", "BatchMode=yes",
                "-o", "UserKnownHostsFile=%s" % os.path.join(LAB_DIR, "ssh", "known_hosts"), "-o", "StrictHostKeyChecking=yes",
                "-o", "ControlMaster=auto", "-o", "ControlPersist=600", "-o", "ControlPath=%s/%%C" % self.dir,
                "-o", "ServerAliveInterval=5", "%s@%s" % (CFG["lab_ssh_user"], HOSTS[host]), "--", shlex.join(cmd)]

    def run(self, host, remote, sudo=True, check=True, **kw):
        if kw.get("input") is None and "stdin" not in kw:
            kw.pop("input", None)
            kw["stdin"] = subprocess.DEVNULL  # never the bench's own stdin
        res = subprocess.run(self.argv(host, remote, sudo), check=False, **kw)
        if check and res.returncode != 0:
            out = res.stdout if isinstance(res.stdout, str) else (res.stdout or b"").decode("utf-8", "replace")
            raise SystemExit("on %s: %s failed (rc %d) %s" % (host, " ".join(remote)[:200], res.returncode, (out or "")[-2000:]))
        return res

    def close(self):
        for host in sorted(self.used):
            subprocess.run(["ssh", "-o", "ControlPath=%s/%%C" % self.dir, "-O", "exit", "%s@%s" % (CFG["lab_ssh_user"], HOSTS[host])],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        self.used.clear()
        try:
            for name in os.listdir(self.dir):
                os.unlink(os.path.join(self.dir, name))
            os.rmdir(self.dir)
        except OSError:
            pass
