"""Debian packages the controller machine needs for the lab (the hosts get theirs from their image and the
collection's node role)."""
import os

from .common import LabError, log, run

PG_BIN = "/usr/lib/postgresql/15/bin"
DEBIAN_PACKAGES = {
    # building the platform's images and the hosts' root filesystems
    "podman": "/usr/bin/podman", "runc": "/usr/sbin/runc", "uidmap": "/usr/bin/newuidmap",
    "fuse-overlayfs": "/usr/bin/fuse-overlayfs", "slirp4netns": "/usr/bin/slirp4netns", "debootstrap": "/usr/sbin/debootstrap",
    # shared infrastructure on the bridge
    "docker-registry": "/usr/bin/docker-registry", "redis-server": "/usr/bin/redis-server",
    "prometheus": "/usr/bin/prometheus", "prometheus-alertmanager": "/usr/bin/prometheus-alertmanager",
    # the controller: SSH to the hosts, PostgreSQL clients and a private server for benchmarks
    "openssh-client": "/usr/bin/ssh", "postgresql": PG_BIN + "/postgres", "postgresql-client": "/usr/bin/pg_dump",
    "openssl": "/usr/bin/openssl", "zstd": "/usr/bin/zstd", "cron": "/usr/bin/crontab",
    # namespaces, the bridge and faults
    "iproute2": "/usr/sbin/ip", "util-linux": "/usr/bin/nsenter", "nftables": "/usr/sbin/nft",
}


def ensure_packages():
    missing = [pkg for pkg, probe in DEBIAN_PACKAGES.items() if not os.path.exists(probe)]
    if not missing:
        return False
    log("installing Debian packages: " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env, what="apt-get update", timeout=600)
    res = run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing, env=env, check=False, timeout=900)
    still = [pkg for pkg in missing if not os.path.exists(DEBIAN_PACKAGES[pkg])]
    if res.returncode != 0 or still:
        raise LabError("Debian package(s) %s could not be installed (apt-get rc %d)" % (" ".join(still or missing), res.returncode))
    return True
