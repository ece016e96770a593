"""Fixtures for tests against the running lab (make lab-up). Nothing here is a stand-in."""
import os
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB_DIR = os.path.abspath(os.environ.get("MCP_LAB_DIR", os.path.join(ROOT, ".lab")))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")


def pytest_collection_modifyitems(items):
    for item in items:
        if "/tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def lab():
    with open(os.path.join(ROOT, "inventories/lab/group_vars/all/lab.yml")) as f:
        cfg = yaml.safe_load(f)
    sock = os.path.join(LAB_DIR, "podman", "podman.sock")
    if not os.path.exists(sock):
        pytest.fail("the lab is not up (no %s): run `make lab-up` first" % sock)
    cfg["lab_dir"] = LAB_DIR
    cfg["docker_host"] = "unix://" + sock
    cfg["registry"] = "127.0.0.1:%d" % cfg["lab_registry_port"]
    return cfg


@pytest.fixture(scope="session")
def docker_client(lab):
    import docker
    client = docker.DockerClient(base_url=lab["docker_host"], timeout=60)
    yield client
    client.close()


def run_playbook(playbook, *extra, check=True, env=None):
    """Run one of the collection's playbooks against the lab inventory; returns the CompletedProcess."""
    argv = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", os.path.join(ROOT, "inventories", "lab"),
            os.path.join(ROOT, "playbooks", playbook)] + list(extra)
    full_env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), MCP_LAB_DIR=LAB_DIR,
                    ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"),
                    ANSIBLE_PYTHON_INTERPRETER=os.path.join(VENV_BIN, "python"), ANSIBLE_FORCE_COLOR="0")
    full_env.update(env or {})
    res = subprocess.run(argv, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         check=False)
    if check and res.returncode != 0:
        raise AssertionError("%s failed (rc %d):\n%s" % (playbook, res.returncode, res.stdout[-6000:]))
    return res


@pytest.fixture(scope="session")
def playbook():
    return run_playbook
