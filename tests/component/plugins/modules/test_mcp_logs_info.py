# -*- coding: utf-8 -*-
"""mcp_logs_info end to end: the real ``ansible`` CLI runs the module (``run_module_result``) against a real
Docker-compatible API, a Podman service of this file's own (``podman_api``: private storage in a temp folder, so the
controller's and the lab's engines are never touched). The line classification is in
tests/unit/plugins/module_utils/test_container_logs.py."""
from __future__ import absolute_import, division, print_function

import os
import shutil
import subprocess
import tarfile
import tempfile

import pytest
from support.waiting import wait_for

from ansible_collections.mcp.platform.plugins.module_utils.platform import MANAGED_LABEL, SERVICE_LABEL

docker = pytest.importorskip("docker")

PODMAN = shutil.which("podman")
IMAGE = "localhost/mcp-logs-test:1"
# what the container prints: two errors, one warning, lines that are neither
SCRIPT = ("echo 'INFO uvicorn.error: started'; echo 'WARN cache cold, first requests slow' >&2; echo 'ERROR handshake failed';"
          " echo 'plain line'; echo 'level=error msg=\"database unreachable\"' >&2; echo 'INFO ready'")
LINES = [{"level": "warn", "line": "WARN cache cold, first requests slow"}, {"level": "error", "line": "ERROR handshake failed"},
         {"level": "error", "line": 'level=error msg="database unreachable"'}]
# This sandbox refuses the rlimits Podman sets by default (the lab's .lab/podman/containers.conf does the same).
CONTAINERS_CONF = '[containers]\ndefault_ulimits = []\nlog_driver = "k8s-file"\n\n[engine]\nruntime = "runc"\n'


def _shell_image_tar(path):
    """A tar of a root file system holding only /bin/sh and the libraries it loads (from ``ldd``)."""
    shell = os.path.realpath("/bin/sh")
    libs = []
    for line in subprocess.run(["ldd", shell], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        for word in parts:
            if word.startswith("/"):
                libs.append(word)
    with tarfile.open(path, "w") as tar:
        tar.add(shell, arcname="bin/sh")
        for lib in libs:
            tar.add(os.path.realpath(lib), arcname=lib.lstrip("/"))


class Podman:
    def __init__(self, root):
        self.root = root
        self.sock = os.path.join(root, "podman.sock")
        self.env = dict(os.environ, CONTAINERS_CONF=os.path.join(root, "containers.conf"))
        self.argv = [PODMAN, "--root", os.path.join(root, "storage"), "--runroot", os.path.join(root, "run"),
                     "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                     "--tmpdir", os.path.join(root, "tmp")]

    def run(self, *args):
        proc = subprocess.run(self.argv + list(args), env=self.env, capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode != 0:
            raise RuntimeError("podman %s: %s" % (" ".join(args), proc.stderr.strip()))
        return proc.stdout.strip()

    def inspect(self):
        """Every container's name, id, state and start/finish times (what a restart or replacement would change)."""
        names = self.run("ps", "--all", "--format", "{{.Names}}").split()
        return self.run("inspect", "--format", "{{.Name}} {{.Id}} {{.State.Status}} {{.State.StartedAt}} {{.State.FinishedAt}}",
                        *sorted(names))


@pytest.fixture(scope="module")
def podman_api():
    """(the API's ``unix://`` URL, a Podman CLI on the same private storage): ``podman system service`` on a socket in
    a temp folder, with an image made of this machine's /bin/sh."""
    if not PODMAN:
        pytest.skip("podman is not installed")
    if os.geteuid() != 0:
        pytest.skip("needs root for a private rootful Podman service")
    root = tempfile.mkdtemp(prefix="mcplogs")
    os.mkdir(os.path.join(root, "tmp"))
    with open(os.path.join(root, "containers.conf"), "w") as fh:
        fh.write(CONTAINERS_CONF)
    pm = Podman(root)
    service = None
    try:
        _shell_image_tar(os.path.join(root, "rootfs.tar"))
        try:
            pm.run("import", os.path.join(root, "rootfs.tar"), IMAGE)
            pm.run("run", "--rm", "--network", "none", IMAGE, "/bin/sh", "-c", "true")
        except RuntimeError as exc:
            pytest.skip("Podman cannot run a container here: %s" % exc)
        service = subprocess.Popen(pm.argv + ["system", "service", "--time=0", "unix://" + pm.sock], env=pm.env,
                                   stdout=subprocess.DEVNULL, stderr=open(os.path.join(root, "service.log"), "w"))
        client = docker.APIClient(base_url="unix://" + pm.sock, version="1.41", timeout=5)
        wait_for(lambda: service.poll() is None and client.ping(), 20)
        yield "unix://" + pm.sock, pm
    finally:
        try:
            pm.run("rm", "--force", "--all")
        except RuntimeError:
            pass
        if service is not None:
            service.terminate()
            service.wait(15)
        shutil.rmtree(root, ignore_errors=True)


def test_read_twice_same_lines_nothing_changed(run_module_result, podman_api):
    """The daily check reads the logs on every run: it must never report a change (nor change a container), and the
    same logs give the same counts and lines, in check mode too. Only containers with every label are read."""
    url, pm = podman_api
    labels = ["%s=true" % MANAGED_LABEL, "%s=logtest" % SERVICE_LABEL]
    pm.run("run", "--name", "mcp-1-logtest-1-v1.0.0", "--network", "none", "--label", labels[0], "--label", labels[1],
           IMAGE, "/bin/sh", "-c", SCRIPT)
    pm.run("run", "--name", "unlabelled", "--network", "none", "--label", labels[0], IMAGE, "/bin/sh", "-c", "echo 'ERROR not ours'")
    states = pm.inspect()
    args = {"docker_host": url, "labels": labels, "since": 3600, "last": 20}

    results = []
    for extra in ((), (), ("--check",)):
        proc, result = run_module_result("mcp_logs_info", args, *extra)
        assert proc.returncode == 0 and result["changed"] is False, proc.stdout + proc.stderr
        results.append(dict((k, v) for k, v in result.items() if k != "invocation"))
    first = results[0]
    assert first["containers"] == ["mcp-1-logtest-1-v1.0.0"]
    assert first["counts"] == {"error": 2, "warn": 1} and first["total"] == 3
    assert sorted((x["level"], x["line"]) for x in first["last"]) == sorted((x["level"], x["line"]) for x in LINES)
    assert set(x["container"] for x in first["last"]) == {"mcp-1-logtest-1-v1.0.0"}
    assert results[1] == first, "a second run reported differently"
    assert results[2] == first, "check mode reported differently"
    assert pm.inspect() == states, "a container was started, stopped or replaced"
