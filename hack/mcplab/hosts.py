"""The lab's hosts: each a network namespace on the bridge, its own mount, UTS and PID namespaces, its own root
filesystem (the host image under a per-host overlay), sshd, and for an MCP host its engine and gateway.

Folders of a host, under .lab/hosts/<name>/:
  disk/        the overlay's upper and work folders: everything the host writes to its root filesystem
  root/        where the root filesystem is mounted (inside the host's mount namespace only)
  provision/   what the lab hands the host at boot (read-only at /usr/local/lib/mcp-lab): init, the health pump,
               the gateway's static configuration, /etc/hosts, the SSH user's authorized_keys
  state/       /run/mcp-lab: the init's logs and its "booted" mark
  etc-mcp/, var-lib-mcp/, containers/, run-podman/   (MCP host) /etc/mcp, /var/lib/mcp, the engine's storage
               and socket folder: bind mounts, so tests can assert on them from the controller
  postgresql/  (PostgreSQL node) /var/lib/postgresql
A host is "up" while its PID 1 (catatonit) lives; killing that PID kills every process of the host at once
(the kernel ends a PID namespace with its init), the way pulling the plug would.
"""
import json
import os
import shutil
import signal
import subprocess
import time

import yaml

from . import hostimage, net
from .common import CFG, ROOT, LabError, log, path, pid_alive, port_open, run, write_if_changed

HERE = os.path.dirname(os.path.abspath(__file__))
PG_BIN = "/usr/lib/postgresql/%s/bin" % CFG["lab_pg_major"]
PG_DATA = "/var/lib/postgresql/%s/main" % CFG["lab_pg_major"]
BIND_DIRS = {"mcp": ["etc-mcp", "var-lib-mcp", "containers", "run-podman"], "pg": ["postgresql"]}


def hdir(name, *parts):
    return path("hosts", name, *parts)


# ---------------------------------------------------------------- SSH

def ssh_dir(*parts):
    return path("ssh", *parts)


def ensure_ssh_key():
    key = ssh_dir("id_ed25519")
    if os.path.exists(key):
        return False
    os.makedirs(ssh_dir(), mode=0o700, exist_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mcp-lab-controller", "-f", key], what="ssh-keygen")
    return True


def host_key(name):
    return hdir(name, "disk", "upper", "etc", "ssh", "ssh_host_ed25519_key")


def write_known_hosts(hosts):
    lines = []
    for name, info in hosts.items():
        pub = host_key(name) + ".pub"
        if os.path.exists(pub):
            key = " ".join(open(pub).read().split()[:2])
            lines.append("%s,%s %s\n" % (info["address"], name, key))
    return write_if_changed(ssh_dir("known_hosts"), "".join(lines), 0o644)


# ---------------------------------------------------------------- creation and provisioning

def recorded_image(name):
    try:
        return open(hdir(name, "image")).read().strip()
    except OSError:
        return None


def create(name, info, image):
    """A new host disk from the image: the folders, its own SSH host key."""
    kind = info["kind"]
    shutil.rmtree(hdir(name), ignore_errors=True)
    for d in ["disk/upper", "disk/work", "root", "provision", "state/logs"] + BIND_DIRS[kind]:
        os.makedirs(hdir(name, d), exist_ok=True)
    keydir = os.path.dirname(host_key(name))
    os.makedirs(keydir, exist_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", host_key(name)], what="%s: host key" % name)
    if kind == "mcp":
        make_gateway_files(name, info["address"])
    with open(hdir(name, "image"), "w") as f:
        f.write(image)
    log("%s: new host (%s image)" % (name, os.path.basename(image)))


def make_gateway_files(name, address, days=90):
    """The gateway's TLS certificate and the file provider's TLS entry, in the host's own /etc/mcp and /var/lib/mcp."""
    tls = hdir(name, "etc-mcp", "tls")
    os.makedirs(tls, exist_ok=True)
    crt, key = os.path.join(tls, "gateway.crt"), os.path.join(tls, "gateway.key")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days", str(days),
         "-subj", "/CN=%s" % name, "-addext", "subjectAltName=DNS:%s,IP:%s" % (name, address)], what="%s: openssl" % name)
    os.chmod(key, 0o600)
    dyn = hdir(name, "var-lib-mcp", "gateway", "dynamic")
    os.makedirs(dyn, exist_ok=True)
    write_if_changed(os.path.join(dyn, "tls.yml"), yaml.safe_dump({"tls": {"certificates": [
        {"certFile": "/etc/mcp/tls/gateway.crt", "keyFile": "/etc/mcp/tls/gateway.key"}]}}))


def traefik_config():
    return {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "log": {"level": "WARN"},
        "entryPoints": {
            "web": {"address": ":%d" % CFG["lab_gateway_http_port"]},
            "websecure": {"address": ":%d" % CFG["lab_gateway_https_port"]},
            "traefik": {"address": ":%d" % CFG["lab_gateway_admin_port"]},
        },
        "api": {"insecure": True, "dashboard": False},
        "ping": {},
        "metrics": {"prometheus": {"addRoutersLabels": True, "addServicesLabels": True}},
        "providers": {
            # the host's own engine only holds this host's containers; the label keeps unmanaged ones out
            "docker": {"endpoint": "unix:///var/run/docker.sock", "exposedByDefault": False, "useBindPortIP": True,
                       "watch": True, "constraints": "Label(`io.mcp-platform.managed`,`true`)"},
            "file": {"directory": "/var/lib/mcp/gateway/dynamic", "watch": True},
            # maintenance windows must reach the gateway within 2 s; Traefik's default throttle is 2 s
            "providersThrottleDuration": "200ms",
        },
    }


def provision(name, info, hosts):
    """Refresh what the lab hands the host at boot. Returns (reboot, live): `reboot` when what its init starts
    changed (the host must reboot to run it), `live` when only /etc/hosts or the authorized key changed (copied in
    place on a running host)."""
    p = hdir(name, "provision")
    os.makedirs(p, exist_ok=True)
    reboot = False
    for script in ("init.sh", "health_pump.py"):
        reboot |= write_if_changed(os.path.join(p, script), open(os.path.join(HERE, "host", script)).read(), 0o755)
    env = {"LAB_RESPONDER_PORT": CFG["lab_responder_port"], "LAB_PGBIN": PG_BIN, "LAB_PGDATA": PG_DATA}
    reboot |= write_if_changed(os.path.join(p, "host.env"), "".join("%s=%s\n" % kv for kv in sorted(env.items())))
    if info["kind"] == "mcp":
        reboot |= write_if_changed(os.path.join(p, "traefik.yml"), yaml.safe_dump(traefik_config()))
        # The 503 responder is a lab part until the collection ships one (it reads the state mcp_maintenance writes)
        reboot |= write_if_changed(os.path.join(p, "responder.py"),
                                   open(os.path.join(ROOT, "lab", "maintenance", "responder.py")).read(), 0o755)
        for lib in ("maintenance.py", "gateway_config.py", "validation.py"):
            reboot |= write_if_changed(os.path.join(p, lib), open(os.path.join(ROOT, "plugins", "module_utils", lib)).read())
    etc_hosts = "127.0.0.1 localhost\n%s %s\n" % (info["address"], name)
    etc_hosts += "".join("%s %s\n" % (h["address"], n) for n, h in hosts.items() if n != name)
    etc_hosts += "%s lab-infra\n%s lab-controller\n" % (CFG["lab_infra_address"], CFG["lab_controller_address"])
    live = write_if_changed(os.path.join(p, "hosts"), etc_hosts)
    live |= write_if_changed(os.path.join(p, "authorized_keys"), open(ssh_dir("id_ed25519.pub")).read(), 0o644)
    return reboot, live


def apply_live(name):
    """Copy the boot-time files that may change while the host runs into place (as its boot does)."""
    user = CFG["lab_ssh_user"]
    execute(name, ["sh", "-c", "cp /usr/local/lib/mcp-lab/hosts /etc/hosts && install -m 600 -o 1000 -g 1000 "
                   "/usr/local/lib/mcp-lab/authorized_keys /home/%s/.ssh/authorized_keys" % user])


# ---------------------------------------------------------------- power

def init_pid(name):
    try:
        pid = int(open(hdir(name, "init.pid")).read().strip())
    except (OSError, ValueError):
        return None
    if not pid_alive(pid):
        return None
    try:  # the PID must still be this host's catatonit, not a recycled number
        if b"catatonit" not in open("/proc/%d/cmdline" % pid, "rb").read():
            return None
    except OSError:
        return None
    return pid


def is_up(name):
    return init_pid(name) is not None


def boot(name, info, timeout=60):
    """Power the host on: a fresh network namespace, then boot.sh as PID 1 of new mount/UTS/PID namespaces."""
    if is_up(name):
        return False
    image = recorded_image(name)
    if not image or not os.path.isdir(image):
        raise LabError("%s: its image %s is gone; run `make lab-up` to recreate the host" % (name, image))
    net.create_netns(name, info["address"])
    shutil.rmtree(hdir(name, "disk", "work", "work"), ignore_errors=True)
    if os.path.exists(hdir(name, "state", "booted")):
        os.unlink(hdir(name, "state", "booted"))
    logf = open(hdir(name, "state", "logs", "boot.log"), "ab")
    argv = ["nsenter", "--net=/run/netns/" + net.netns_name(name), "unshare", "--mount", "--uts", "--pid", "--fork",
            "--propagation", "private", "sh", os.path.join(HERE, "host", "boot.sh"), name, info["kind"], image,
            hdir(name), CFG["lab_ssh_user"]]
    proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    pid = None
    deadline = time.time() + 10
    while time.time() < deadline and pid is None:
        if proc.poll() is not None:
            raise LabError("%s: the host did not boot (rc %s): %s" % (name, proc.returncode, tail(hdir(name, "state", "logs", "boot.log"))))
        try:
            children = open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)).read().split()
        except OSError:
            children = []
        for child in children:
            try:
                if b"catatonit" in open("/proc/%s/cmdline" % child, "rb").read():
                    pid = int(child)
            except OSError:
                pass
        time.sleep(0.05)
    if pid is None:
        raise LabError("%s: the host's init did not start within 10 s: %s" % (name, tail(hdir(name, "state", "logs", "boot.log"))))
    with open(hdir(name, "init.pid"), "w") as f:
        f.write(str(pid))
    net.remember_pid(pid)
    wait_booted(name, info, timeout)
    return True


def tail(logfile, lines=2):
    try:
        return " | ".join(open(logfile, errors="replace").read().strip().splitlines()[-lines:]) or "(no output)"
    except OSError:
        return "(no log)"


def wait_booted(name, info, timeout):
    deadline = time.time() + timeout
    logs = hdir(name, "state", "logs")
    while time.time() < deadline:
        if not is_up(name):
            raise LabError("%s: the host stopped while booting: %s" % (name, tail(os.path.join(logs, "boot.log"))))
        if os.path.exists(hdir(name, "state", "booted")):
            break
        time.sleep(0.1)
    else:
        raise LabError("%s: the init did not finish booting within %ds (see %s)" % (name, timeout, logs))
    checks = [("sshd", lambda: port_open(info["address"], 22), "sshd.log")]
    if info["kind"] == "mcp":
        checks += [("the container engine", lambda: engine_ping(name), "podman.log"),
                   ("the gateway", lambda: port_open(info["address"], CFG["lab_gateway_http_port"]), "traefik.log"),
                   ("the maintenance responder", lambda: port_open(info["address"], CFG["lab_responder_port"]), "responder.log")]
    elif os.path.exists(os.path.join(hdir(name, "postgresql"), PG_DATA.split("/var/lib/postgresql/")[1], "PG_VERSION")):
        checks += [("PostgreSQL", lambda: port_open(info["address"], 5432), "postgres.log")]
    for what, ok, logname in checks:
        while not ok():
            if time.time() > deadline:
                raise LabError("%s: %s did not come up within %ds: %s" % (name, what, timeout, tail(os.path.join(logs, logname))))
            time.sleep(0.1)


def engine_socket(name):
    return hdir(name, "run-podman", "podman.sock")


def engine_ping(name):
    """GET /_ping on the host's engine socket (the lab reaches it through the bind-mounted folder)."""
    import http.client
    import socket as _socket

    class Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            self.sock.settimeout(2)
            self.sock.connect(engine_socket(name))
    try:
        c = Conn("localhost", timeout=2)
        c.request("GET", "/_ping")
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False


def kill(name, timeout=10):
    """Every process of the host dies at once (SIGKILL to its PID 1), then its network goes: like a power cut."""
    pid = init_pid(name)
    if pid:
        os.kill(pid, signal.SIGKILL)
        deadline = time.time() + timeout
        while pid_alive(pid) and time.time() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            raise LabError("%s: PID %d survived SIGKILL for %ds" % (name, pid, timeout))
    net.delete_netns(name)
    if os.path.exists(hdir(name, "state", "booted")):
        os.unlink(hdir(name, "state", "booted"))
    return bool(pid)


def shutdown(name, timeout=20):
    """A clean stop: PostgreSQL's fast shutdown and the engine's containers first, then the power."""
    if not is_up(name):
        net.delete_netns(name)
        return False
    kind = kind_of(name)
    if kind == "pg" and os.path.exists(os.path.join(hdir(name, "postgresql"), PG_DATA.split("/var/lib/postgresql/")[1], "postmaster.pid")):
        execute(name, ["runuser", "-u", "postgres", "--", PG_BIN + "/pg_ctl", "-D", PG_DATA, "-m", "fast", "-w", "stop"],
                check=False, timeout=timeout)
    elif kind == "mcp":
        execute(name, ["podman", "stop", "--all", "--time", "2"], check=False, timeout=timeout)
    return kill(name)


def kind_of(name):
    image = recorded_image(name) or ""
    return os.path.basename(image).split("-")[0] or None


def execute(name, argv, check=True, timeout=120, input=None, user=None):
    """Run argv on the host, as root (or `user`): inside all of its namespaces, with its root filesystem."""
    pid = init_pid(name)
    if not pid:
        raise LabError("%s is not up" % name)
    cmd = ["nsenter", "-t", str(pid), "-m", "-u", "-n", "-p", "-r", "-w", "--"]
    if user:
        cmd += ["runuser", "-u", user, "--"]
    try:
        res = subprocess.run(cmd + list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             timeout=timeout, input=input, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"})
    except subprocess.TimeoutExpired:
        raise LabError("%s: %s did not finish within %ss" % (name, argv[0], timeout))
    if check and res.returncode != 0:
        raise LabError("%s: %s failed (rc %d): %s" % (name, " ".join(argv[:3]), res.returncode,
                                                      " | ".join(res.stdout.strip().splitlines()[-3:])))
    return res


# ---------------------------------------------------------------- the whole set

def ensure(hosts):
    """Every inventory host exists (recreated when its image changed), is provisioned and up."""
    for name in hosts:
        net.veth_name(name)  # refuse a name the kernel cannot use before changing anything
    ensure_ssh_key()
    images = {}
    changed = False
    kinds = sorted({h["kind"] for h in hosts.values()})
    for kind in kinds:
        images[kind], built = hostimage.build(kind)
        changed |= built
    for name, info in hosts.items():
        image = images[info["kind"]]
        if recorded_image(name) != image:
            if recorded_image(name):
                log("%s: the %s host image changed; recreating the host (its disk is discarded)" % (name, info["kind"]))
            shutdown(name)
            create(name, info, image)
            changed = True
        reboot, live = provision(name, info, hosts)
        if reboot and is_up(name):
            log("%s: what its init starts changed; rebooting" % name)
            shutdown(name)
        elif live and is_up(name):
            apply_live(name)
        changed |= write_known_hosts(hosts)
    for name, info in hosts.items():
        if boot(name, info):
            log("%s: up at %s" % (name, info["address"]))
            changed = True
    write_known_hosts(hosts)
    return changed


def status(hosts):
    rows = []
    for name, info in hosts.items():
        pid = init_pid(name)
        state = "up (pid %d)" % pid if pid else "down"
        if pid and info["kind"] == "mcp":
            state += ", engine %s, gateway %s" % ("ok" if engine_ping(name) else "DOWN",
                                                  "ok" if port_open(info["address"], CFG["lab_gateway_http_port"]) else "DOWN")
        elif pid:
            state += ", postgres %s" % ("listening" if port_open(info["address"], 5432) else "DOWN")
        rows.append(("%s %s" % (name, info["address"]), state))
    return rows


def engine_containers(name):
    """The host's containers as the engine lists them (the lab's own view, for status and cleanup)."""
    res = execute(name, ["podman", "ps", "-a", "--format", "json"], check=False)
    try:
        return json.loads(res.stdout or "[]")
    except ValueError:
        return []
