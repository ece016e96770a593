"""What every part of the lab shares: its configuration, its folder, running commands, daemons by PID file."""
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.abspath(os.environ.get("MCP_LAB_DIR", os.path.join(ROOT, ".lab")))
VENV = os.environ.get("MCP_VENV", os.path.join(ROOT, ".venv"))
INVENTORY = os.path.join(ROOT, "inventories", "lab")

with open(os.path.join(INVENTORY, "group_vars", "all", "lab.yml")) as _f:
    CFG = yaml.safe_load(_f)

# Inventory group -> kind of lab host. The group decides what the host image holds and what its init starts.
KIND_OF_GROUP = {"mcp_hosts": "mcp", "postgres": "pg"}


class LabError(Exception):
    """One line naming the cause; the CLI prints it and exits 1."""


def log(msg):
    print("lab: " + msg, flush=True)


def path(*parts):
    return os.path.join(LAB, *parts)


def _walk_groups(node, group, out):
    for name, hv in ((node or {}).get("hosts") or {}).items():
        out.setdefault(name, {"groups": set(), "vars": {}})
        out[name]["groups"].add(group)
        out[name]["vars"].update(hv or {})
    for child, sub in ((node or {}).get("children") or {}).items():
        _walk_groups(sub, child, out)


def lab_hosts():
    """{name: {"address", "kind", "vars"}} for every inventory host in a group that maps to a kind, in file order."""
    with open(os.path.join(INVENTORY, "hosts.yml")) as f:
        inv = yaml.safe_load(f)
    found = {}
    _walk_groups(inv.get("all"), "all", found)
    hosts = {}
    for name, info in found.items():
        kinds = {KIND_OF_GROUP[g] for g in info["groups"] if g in KIND_OF_GROUP}
        if not kinds:
            continue
        if len(kinds) > 1:
            raise LabError("inventory host %s is in groups of two kinds (%s)" % (name, ", ".join(sorted(kinds))))
        addr = info["vars"].get("ansible_host")
        if not addr:
            raise LabError("inventory host %s has no ansible_host (the lab needs its address)" % name)
        hosts[name] = {"address": addr, "kind": kinds.pop(), "vars": info["vars"]}
    for name, info in extra_hosts().items():
        hosts.setdefault(name, info)
    return hosts


def extra_hosts_file():
    return path("run", "extra_hosts.json")


def extra_hosts():
    """Hosts made for one scenario (`lab.py host create`), not in the inventory: a fresh machine to provision."""
    try:
        with open(extra_hosts_file()) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def save_extra_hosts(extra):
    os.makedirs(path("run"), exist_ok=True)
    with open(extra_hosts_file() + ".tmp", "w") as f:
        json.dump(extra, f, indent=1, sort_keys=True)
    os.replace(extra_hosts_file() + ".tmp", extra_hosts_file())


def run(argv, check=True, env=None, quiet=True, what=None, timeout=None, **kw):
    try:
        res = subprocess.run(argv, env=env, stdout=subprocess.PIPE if quiet else None,
                             stderr=subprocess.STDOUT if quiet else None, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        raise LabError("%s did not finish within %ss" % (what or argv[0], timeout))
    except FileNotFoundError:
        raise LabError("%s: %s is not installed" % (what or argv[0], argv[0]))
    if check and res.returncode != 0:
        tail = (res.stdout or "").strip().splitlines()[-3:]
        raise LabError("%s failed (rc %d): %s" % (what or argv[0], res.returncode, " | ".join(tail)))
    return res


def write_if_changed(target, content, mode=0o644):
    old = None
    if os.path.exists(target):
        with open(target) as f:
            old = f.read()
    if old == content:
        return False
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = target + ".tmp"
    with open(tmp, "w") as f:
        f.write(content)
    os.chmod(tmp, mode)
    os.replace(tmp, target)
    return True


def port_open(host, port, timeout=0.3):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def source_hash(*items):
    """Digest of files, folders (walked in order) and strings: what a cached build was made from."""
    h = hashlib.sha256()
    for item in items:
        if isinstance(item, str) and os.path.isdir(item):
            for base, subdirs, files in sorted(os.walk(item)):
                subdirs.sort()
                for name in sorted(files):
                    if name.endswith(".pyc"):
                        continue
                    full = os.path.join(base, name)
                    h.update(os.path.relpath(full, item).encode())
                    with open(full, "rb") as f:
                        h.update(f.read())
        elif isinstance(item, str) and os.path.isfile(item):
            with open(item, "rb") as f:
                h.update(f.read())
        else:
            h.update(repr(item).encode())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------- daemons in the controller's namespace

def pidfile(name):
    return path("run", name + ".pid")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def running_pid(name):
    try:
        with open(pidfile(name)) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def fingerprint(argv):
    """What a running daemon was started from: its command line and the lab's own scripts it runs."""
    h = hashlib.sha256(" ".join(argv).encode())
    for arg in argv:
        if arg.startswith(ROOT) and arg.endswith(".py") and os.path.exists(arg):
            with open(arg, "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:16]


def start_daemon(name, argv, host, port, env=None, ready=None, timeout=30):
    """Start argv in the background unless our PID for `name` lives (restarting it when its script or command
    line changed); fail by name if the port is taken. Returns True when it started something."""
    fp_file = path("run", name + ".fp")
    fp = fingerprint(argv)
    if running_pid(name):
        if os.path.exists(fp_file) and open(fp_file).read() == fp:
            return False
        stop_daemon(name)
    if port and port_open(host, port):
        raise LabError("port %s:%d needed by %s is already in use by another process" % (host, port, name))
    logf = open(path("logs", name + ".log"), "ab")
    proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                            stdin=subprocess.DEVNULL)
    with open(pidfile(name), "w") as f:
        f.write(str(proc.pid))
    with open(fp_file, "w") as f:
        f.write(fp)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise LabError("%s exited at start (rc %s); see %s" % (name, proc.returncode, path("logs", name + ".log")))
        if (ready() if ready else port_open(host, port)):
            return True
        time.sleep(0.1)
    raise LabError("%s did not become ready within %ds; see %s" % (name, timeout, path("logs", name + ".log")))


def stop_daemon(name, timeout=10):
    pid = running_pid(name)
    if pid:
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            os.kill(pid, signal.SIGTERM)
        deadline = time.time() + timeout
        while time.time() < deadline and running_pid(name):
            time.sleep(0.1)
        if running_pid(name):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        log("stopped %s (pid %d)" % (name, pid))
    if os.path.exists(pidfile(name)):
        os.unlink(pidfile(name))
    return bool(pid)


def python():
    """The controller venv's Python (the lab's own helpers run under it), else this interpreter."""
    candidate = os.path.join(VENV, "bin", "python")
    return candidate if os.path.exists(candidate) else sys.executable
