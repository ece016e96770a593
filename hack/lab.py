#!/usr/bin/env python3
"""The local lab: a whole MCP Platform on this machine, on 127.0.0.x only.

`lab.py up|down|status|clean`. Everything lives in $MCP_LAB_DIR (default .lab/); every
process is started here, remembered by its PID file, and stopped by that PID. Containers are
created by the collection's own deploy playbook (make lab-up runs it after `up`); `down` removes
only containers labelled io.mcp-platform.lab=true. Nothing in /etc is edited: podman gets
CONTAINERS_CONF and CONTAINERS_REGISTRIES_CONF pointing at files in the lab folder.

Why a Python script and not a playbook: the infrastructure under the platform (engine API,
registry, databases, S3, gateways) has to exist before any inventory host is usable, and each
failure must end in one line naming the cause (a taken port, a package that will not install).
"""
import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB = os.path.abspath(os.environ.get("MCP_LAB_DIR", os.path.join(ROOT, ".lab")))
VENV = os.environ.get("MCP_VENV", os.path.join(ROOT, ".venv"))
PG_BIN = "/usr/lib/postgresql/15/bin"
with open(os.path.join(ROOT, "inventories/lab/group_vars/all/lab.yml")) as _f:
    CFG = yaml.safe_load(_f)

DEBIAN_PACKAGES = {
    "podman": "/usr/bin/podman", "runc": "/usr/sbin/runc", "uidmap": "/usr/bin/newuidmap",
    "fuse-overlayfs": "/usr/bin/fuse-overlayfs", "slirp4netns": "/usr/bin/slirp4netns",
    "docker-registry": "/usr/bin/docker-registry", "redis-server": "/usr/bin/redis-server",
    "prometheus": "/usr/bin/prometheus", "prometheus-alertmanager": "/usr/bin/prometheus-alertmanager",
    "debootstrap": "/usr/sbin/debootstrap", "postgresql": PG_BIN + "/postgres",
    "postgresql-client": "/usr/bin/pg_dump", "openssl": "/usr/bin/openssl", "zstd": "/usr/bin/zstd",
    "cron": "/usr/bin/crontab",
}
BASE_IMAGE = "localhost/mcp-lab-base:bookworm"
LAB_LABEL = "io.mcp-platform.lab=true"


class LabError(Exception):
    """One line naming the cause; `main` prints it and exits 1."""


def log(msg):
    print("lab: " + msg, flush=True)


def path(*parts):
    return os.path.join(LAB, *parts)


def podman_env():
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = path("podman", "containers.conf")
    env["CONTAINERS_REGISTRIES_CONF"] = path("podman", "registries.conf")
    return env


def run(argv, check=True, env=None, quiet=True, what=None, **kw):
    res = subprocess.run(argv, env=env, stdout=subprocess.PIPE if quiet else None,
                         stderr=subprocess.STDOUT if quiet else None, text=True, **kw)
    if check and res.returncode != 0:
        tail = (res.stdout or "").strip().splitlines()[-3:]
        raise LabError("%s failed (rc %d): %s" % (what or argv[0], res.returncode, " | ".join(tail)))
    return res


def podman(*args, check=True, what=None):
    return run(["podman"] + list(args), check=check, env=podman_env(), what=what or "podman " + args[0])


# ---------------------------------------------------------------- processes

def pidfile(name):
    return path("run", name + ".pid")


def running_pid(name):
    try:
        with open(pidfile(name)) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        with open("/proc/%d/stat" % pid) as f:
            if f.read().split()[2] == "Z":
                return None
        return pid
    except (OSError, ValueError):
        return None


def port_open(host, port, timeout=0.3):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def fingerprint(argv):
    """What a running daemon was started from: its command line and the lab's own scripts it runs."""
    h = hashlib.sha256(" ".join(argv).encode())
    for arg in argv:
        if arg.startswith(ROOT) and arg.endswith(".py") and os.path.exists(arg):
            with open(arg, "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:16]


def start_daemon(name, argv, host, port, env=None, ready=None, timeout=30):
    """Start argv in the background unless our PID for `name` lives (restarting it when its script or
    command line changed); fail by name if the port is taken."""
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


# ---------------------------------------------------------------- packages and files

def ensure_packages():
    missing = [pkg for pkg, probe in DEBIAN_PACKAGES.items() if not os.path.exists(probe)]
    if not missing:
        return False
    log("installing Debian packages: " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env, what="apt-get update")
    res = run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing, env=env, check=False)
    still = [pkg for pkg in missing if not os.path.exists(DEBIAN_PACKAGES[pkg])]
    if res.returncode != 0 or still:
        raise LabError("Debian package(s) %s could not be installed (apt-get rc %d)" % (" ".join(still or missing), res.returncode))
    return True


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


def layout():
    for d in ("run", "logs", "podman", "registry/data", "cache", "build", "pg", "redis", "moto", "prom/data",
              "am/data", "smtp"):
        os.makedirs(path(d), exist_ok=True)
    write_if_changed(path("podman", "containers.conf"),
                     '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n')
    write_if_changed(path("podman", "registries.conf"),
                     '[[registry]]\nlocation = "127.0.0.1:%d"\ninsecure = true\n' % CFG["lab_registry_port"])


# ---------------------------------------------------------------- services

def up_podman():
    sock = path("podman", "podman.sock")
    if running_pid("podman") and os.path.exists(sock):
        return False
    if os.path.exists(sock):
        os.unlink(sock)
    # A lab whose API service is gone has lost its containers' processes too (the run that started them
    # ended), but Podman's storage still lists them: remove ours so the deploy recreates them cleanly.
    stale = lab_containers()
    if stale:
        podman("rm", "--force", "--time", "0", *stale, check=False)
        log("removed %d stale lab containers" % len(stale))
    return start_daemon("podman", ["podman", "system", "service", "--time=0", "unix://" + sock], None, None,
                        env=podman_env(), ready=lambda: os.path.exists(sock))


def up_registry():
    port = CFG["lab_registry_port"]
    write_if_changed(path("registry", "config.yml"), yaml.safe_dump({
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": path("registry", "data")}, "delete": {"enabled": True}},
        "http": {"addr": "127.0.0.1:%d" % port}}))
    return start_daemon("registry", ["docker-registry", "serve", path("registry", "config.yml")], "127.0.0.1", port)


def pg_run(*argv, check=True):
    return run(["runuser", "-u", "postgres", "--"] + list(argv), check=check, what=os.path.basename(argv[0]))


def psql(port, sql, db="postgres"):
    return pg_run("psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", db, "-XAtqc", sql).stdout.strip()


def pg_running(datadir):
    return pg_run(PG_BIN + "/pg_ctl", "-D", datadir, "status", check=False).returncode == 0


def pg_start(datadir, port, name):
    if pg_running(datadir):
        return False
    if port_open("127.0.0.1", port):
        raise LabError("port 127.0.0.1:%d needed by PostgreSQL %s is already in use by another process" % (port, name))
    pg_run(PG_BIN + "/pg_ctl", "-D", datadir, "-o", "-p %d" % port, "-l", path("pg", "%s.log" % name), "-w", "start")
    return True


def up_postgres():
    """Primary + streaming replica. After a failover the roles may have swapped: we keep what is there."""
    changed = False
    pgdir = path("pg")
    shutil.chown(pgdir, "postgres", "postgres")
    os.makedirs(path("pg", "sock"), exist_ok=True)
    shutil.chown(path("pg", "sock"), "postgres", "postgres")
    primary, replica = path("pg", "primary"), path("pg", "replica")
    pport, rport = CFG["lab_postgres_primary_port"], CFG["lab_postgres_replica_port"]
    if not os.path.exists(os.path.join(primary, "PG_VERSION")):
        log("initdb PostgreSQL primary")
        shutil.rmtree(primary, ignore_errors=True)
        pg_run(PG_BIN + "/initdb", "-D", primary, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        with open(os.path.join(primary, "postgresql.conf"), "a") as f:
            f.write("\n# mcp lab (port is passed on the command line: pg_rewind copies config files)\n"
                    "listen_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nwal_level = replica\n"
                    "max_wal_senders = 10\nwal_keep_size = '256MB'\nhot_standby = on\nwal_log_hints = on\n"
                    "hot_standby_feedback = on\nfsync = off\nsynchronous_commit = off\n" % path("pg", "sock"))
        with open(os.path.join(primary, "pg_hba.conf"), "a") as f:
            f.write("host replication all 127.0.0.1/32 trust\n")
        changed = True
    changed |= pg_start(primary, pport, "primary")
    if not os.path.exists(os.path.join(replica, "PG_VERSION")):
        log("pg_basebackup PostgreSQL replica")
        pg_run(PG_BIN + "/pg_basebackup", "-h", "127.0.0.1", "-p", str(pport), "-U", "postgres", "-D", replica,
               "-R", "-X", "stream", "-c", "fast")
        changed = True
    changed |= pg_start(replica, rport, "replica")
    # seed the platform database on whichever node is primary now
    writer = pport if psql(pport, "select pg_is_in_recovery()") == "f" else rport
    user, pw, db = CFG["lab_db_user"], CFG["lab_db_password"], CFG["lab_db_name"]
    if psql(writer, "select 1 from pg_roles where rolname='%s'" % user) != "1":
        psql(writer, "create role %s login password '%s'" % (user, pw))
        changed = True
    if psql(writer, "select 1 from pg_database where datname='%s'" % db) != "1":
        psql(writer, "create database %s owner %s" % (db, user))
        changed = True
    seed = os.path.join(ROOT, "lab", "images", "seed.sql")
    if os.path.exists(seed) and psql(writer, "select to_regclass('public.audit_log') is null", db=db) == "t":
        pg_run("psql", "-h", "127.0.0.1", "-p", str(writer), "-U", user, "-d", db, "-XAtq", "-v", "ON_ERROR_STOP=1",
               "-f", seed)
        changed = True
    return changed


def up_redis():
    port = CFG["lab_redis_port"]
    return start_daemon("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", path("redis"),
                                  "--save", "", "--appendonly", "no", "--protected-mode", "yes"], "127.0.0.1", port)


def up_s3():
    port = CFG["lab_s3_port"]
    started = start_daemon("moto", [os.path.join(VENV, "bin", "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                           "127.0.0.1", port)
    import boto3  # the venv has it; imported late so `lab.py down` works without it
    s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:%d" % port, aws_access_key_id=CFG["lab_s3_access_key"],
                      aws_secret_access_key=CFG["lab_s3_secret_key"], region_name="us-east-1")
    names = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    if CFG["lab_s3_bucket"] not in names:
        s3.create_bucket(Bucket=CFG["lab_s3_bucket"])
        started = True
    return started


def up_smtp():
    port = CFG["lab_smtp_port"]
    return start_daemon("smtp", [sys.executable, os.path.join(ROOT, "hack", "smtp_sink.py"), "--listen",
                                 "127.0.0.1:%d" % port, "--maildir", path("smtp")], "127.0.0.1", port)


# ---------------------------------------------------------------- images

def source_hash(*dirs):
    h = hashlib.sha256()
    for d in dirs:
        for base, subdirs, files in sorted(os.walk(d)):
            subdirs.sort()
            for name in sorted(files):
                if name.endswith(".pyc"):
                    continue
                full = os.path.join(base, name)
                h.update(os.path.relpath(full, d).encode())
                with open(full, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()[:16]


def image_label(ref, label):
    res = podman("image", "inspect", "--format", "{{ index .Labels \"%s\" }}" % label, ref, check=False)
    return res.stdout.strip() if res.returncode == 0 else None


def ensure_base_image():
    if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return False
    tarball = path("cache", "mcp-lab-base.tar")
    if not os.path.exists(tarball):
        mirror = "http://deb.debian.org/debian"
        src = "/etc/apt/sources.list.d/debian.sources"
        if os.path.exists(src):
            for line in open(src):
                if line.startswith("URIs:"):
                    mirror = line.split()[1]
                    break
        rootfs = path("cache", "rootfs")
        shutil.rmtree(rootfs, ignore_errors=True)
        log("debootstrap Debian bookworm minbase + python3 (about 40 s, cached afterwards)")
        run(["debootstrap", "--variant=minbase", "--include=python3,ca-certificates", "bookworm", rootfs, mirror],
            what="debootstrap of the base image")
        run(["tar", "-C", rootfs, "-cf", tarball + ".tmp", "."], what="tar of the base rootfs")
        os.replace(tarball + ".tmp", tarball)
        shutil.rmtree(rootfs, ignore_errors=True)
    with open(tarball, "rb") as f:
        res = subprocess.run(["podman", "import", "--change", 'CMD ["sleep","infinity"]', "-", BASE_IMAGE], stdin=f,
                             env=podman_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if res.returncode != 0:
        raise LabError("podman import of the base image failed: " + res.stdout.strip().splitlines()[-1])
    return True


def pydeps():
    """Python packages for the images, installed on the host (same Python 3.11 as bookworm)."""
    target = path("build", "pydeps")
    stamp = os.path.join(target, ".stamp")
    want = "mcp==2.3.0 psycopg2-binary==2.9.13"
    if os.path.exists(stamp) and open(stamp).read() == want:
        return target
    shutil.rmtree(target, ignore_errors=True)
    log("pip install --target for the images: " + want)
    run([os.path.join(VENV, "bin", "pip"), "install", "-q", "--no-compile", "--target", target] + want.split(),
        what="pip install of the image dependencies")
    with open(stamp, "w") as f:
        f.write(want)
    return target


def registry_has(repo, tag):
    url = "http://127.0.0.1:%d/v2/%s/manifests/%s" % (CFG["lab_registry_port"], repo, tag)
    req = urllib.request.Request(url, method="HEAD", headers={
        "Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status == 200
    except urllib.error.HTTPError:
        return False


BEHAVIOURS = {"1.0.0": "healthy", "1.1.0": "healthy", "1.2.0": "unhealthy", "1.3.0": "degrade-after:20"}


RUNTIME_IMAGE = "localhost/mcp-lab-runtime:bookworm"


def build_runtime():
    """Base + Python packages, built once; every lab image starts from it (seconds per image after)."""
    deps = pydeps()
    stamp = open(os.path.join(deps, ".stamp")).read()
    digest = hashlib.sha256((stamp + source_hash(os.path.join(ROOT, "lab", "images", "runtime"))).encode()).hexdigest()[:16]
    if image_label(RUNTIME_IMAGE, "io.mcp-platform.lab.src") == digest:
        return False
    ctx = path("build", "ctx-runtime")
    shutil.rmtree(ctx, ignore_errors=True)
    shutil.copytree(os.path.join(ROOT, "lab", "images", "runtime"), ctx)
    shutil.copytree(deps, os.path.join(ctx, "pydeps"), symlinks=True)
    podman("build", "--format", "docker", "-q", "-t", RUNTIME_IMAGE, "--label", "io.mcp-platform.lab.src=" + digest,
           "--label", LAB_LABEL, "-f", os.path.join(ctx, "Containerfile"), ctx, what="image build of the lab runtime")
    shutil.rmtree(ctx, ignore_errors=True)
    log("built %s" % RUNTIME_IMAGE)
    return True


def build_images():
    """service images per service x version, a broken-mcp variant, and a migrations image per version."""
    changed = ensure_base_image()
    changed |= build_runtime()
    runtime_id = podman("image", "inspect", "--format", "{{.Id}}", RUNTIME_IMAGE).stdout.strip()[:12]
    images_dir = os.path.join(ROOT, "lab", "images")
    registry = "127.0.0.1:%d" % CFG["lab_registry_port"]
    jobs = []
    for svc in CFG["lab_services"]:
        for ver in CFG["lab_versions"]:
            jobs.append(("service", svc, ver, BEHAVIOURS.get(ver, "healthy")))
        jobs.append(("service", svc, "0.9.0-broken-mcp", "broken-mcp"))
    for ver in CFG["lab_versions"]:
        jobs.append(("migrations", "migrations", ver, ""))
    for kind, name, ver, behaviour in jobs:
        ctx = os.path.join(images_dir, kind)
        digest = "%s-%s-%s-%s-%s" % (source_hash(ctx), runtime_id, name, ver, behaviour)
        local = "localhost/mcp-platform/%s:%s" % (name, ver)
        remote = "%s/mcp-platform/%s:%s" % (registry, name, ver)
        built = False
        if image_label(local, "io.mcp-platform.lab.src") != digest:
            # --no-cache: Podman 4.3's layer cache ignores --build-arg values, and every service and version
            # would come out as the first one built (same labels, same MCP_VERSION)
            args = ["build", "--no-cache", "--format", "docker", "-q", "-t", local, "--label", "io.mcp-platform.lab.src=" + digest,
                    "--label", LAB_LABEL, "--build-arg", "VERSION=" + ver]
            if kind == "service":
                args += ["--build-arg", "SERVICE=" + name, "--build-arg", "BEHAVIOUR=" + behaviour]
            podman(*(args + ["-f", os.path.join(ctx, "Containerfile"), ctx]), what="image build of %s:%s" % (name, ver))
            if kind == "service" and (image_label(local, "io.mcp-platform.service"), image_label(local, "io.mcp-platform.version")) != (name, ver):
                raise LabError("image build of %s:%s produced an image labelled %s:%s" % (
                    name, ver, image_label(local, "io.mcp-platform.service"), image_label(local, "io.mcp-platform.version")))
            built = changed = True
            log("built %s" % local)
        if built or not registry_has("mcp-platform/" + name, ver):
            podman("tag", local, remote)
            podman("push", "-q", "--tls-verify=false", remote, what="push of " + remote)
            changed = True
    return changed


# ---------------------------------------------------------------- per-host gateway

def host_dirs(host):
    base = path("hosts", host)
    return {"config": os.path.join(base, "etc", "mcp"), "state": os.path.join(base, "var", "lib", "mcp"),
            "data": os.path.join(base, "var", "lib", "mcp", "data"),
            "dynamic": os.path.join(base, "var", "lib", "mcp", "gateway", "dynamic"),
            "tls": os.path.join(base, "etc", "mcp", "tls")}


def ensure_cert(host, addr, days=90):
    d = host_dirs(host)["tls"]
    crt, key = os.path.join(d, "gateway.crt"), os.path.join(d, "gateway.key")
    if os.path.exists(crt) and os.path.exists(key):
        return False
    os.makedirs(d, exist_ok=True)
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days", str(days),
         "-subj", "/CN=%s" % host, "-addext", "subjectAltName=DNS:%s,IP:%s" % (host, addr)], what="openssl for " + host)
    os.chmod(key, 0o600)
    return True


def up_gateway(host, addr):
    d = host_dirs(host)
    for key in ("config", "state", "data", "dynamic"):
        os.makedirs(d[key], exist_ok=True)
    changed = ensure_cert(host, addr)
    changed |= write_if_changed(os.path.join(d["dynamic"], "tls.yml"), yaml.safe_dump({"tls": {"certificates": [
        {"certFile": os.path.join(d["tls"], "gateway.crt"), "keyFile": os.path.join(d["tls"], "gateway.key")}]}}))
    static = {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "log": {"level": "WARN"},
        "entryPoints": {
            "web": {"address": "%s:%d" % (addr, CFG["lab_gateway_http_port"])},
            "websecure": {"address": "%s:%d" % (addr, CFG["lab_gateway_https_port"])},
            "traefik": {"address": "%s:%d" % (addr, CFG["lab_gateway_admin_port"])},
        },
        "api": {"insecure": True, "dashboard": False},
        "ping": {},
        "metrics": {"prometheus": {"addRoutersLabels": True, "addServicesLabels": True}},
        "providers": {
            "docker": {"endpoint": "unix://" + path("podman", "podman.sock"), "exposedByDefault": False,
                       "useBindPortIP": True, "watch": True,
                       "constraints": "Label(`io.mcp-platform.host`,`%s`)" % host},
            "file": {"directory": d["dynamic"], "watch": True},
            # maintenance windows must reach the gateway within 2 s; Traefik's default throttle is 2 s
            "providersThrottleDuration": "200ms",
        },
    }
    cfgfile = path("run", "traefik-%s.yml" % host)
    cfg_changed = write_if_changed(cfgfile, yaml.safe_dump(static))
    name = "traefik-" + host
    if cfg_changed and running_pid(name):
        stop_daemon(name)
    changed |= start_daemon(name, [os.path.join(VENV, "bin", "traefik"), "--configfile=" + cfgfile], addr,
                            CFG["lab_gateway_http_port"], timeout=20)
    responder = os.path.join(ROOT, "lab", "maintenance", "responder.py")
    if os.path.exists(responder):
        port = CFG.get("lab_responder_port", 28090)
        argv = [sys.executable, responder, "--listen", "%s:%d" % (addr, port),
                "--state-file", os.path.join(d["state"], "maintenance.json")]
        changed |= start_daemon("responder-" + host, argv, addr, port)
    return changed


def up_health_pump():
    return start_daemon("health-pump", [sys.executable, os.path.join(ROOT, "hack", "health_pump.py")], None, None, env=podman_env(), ready=lambda: True)


def up_monitoring():
    targets = ["%s:%d" % (addr, CFG["lab_gateway_admin_port"]) for addr in CFG["lab_hosts"].values()]
    prom = {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:%d" % CFG["lab_alertmanager_port"]]}]}]},
        "rule_files": [path("prom", "rules", "*.yml")],
        "scrape_configs": [
            {"job_name": "mcp-gateway", "static_configs": [{"targets": targets}]},
            {"job_name": "mcp-node-textfile", "static_configs": []},
        ],
    }
    os.makedirs(path("prom", "rules"), exist_ok=True)
    ch = write_if_changed(path("prom", "prometheus.yml"), yaml.safe_dump(prom, sort_keys=False))
    ch |= write_if_changed(path("am", "alertmanager.yml"), yaml.safe_dump({
        "route": {"receiver": "lab", "group_wait": "1s"}, "receivers": [{"name": "lab"}]}))
    if ch:
        stop_daemon("prometheus")
    rules = rule_files_changed()
    changed = start_daemon("alertmanager", ["prometheus-alertmanager", "--config.file=" + path("am", "alertmanager.yml"),
                                            "--storage.path=" + path("am", "data"),
                                            "--web.listen-address=127.0.0.1:%d" % CFG["lab_alertmanager_port"],
                                            "--cluster.listen-address="],
                           "127.0.0.1", CFG["lab_alertmanager_port"])
    changed |= start_daemon("prometheus", ["prometheus", "--config.file=" + path("prom", "prometheus.yml"),
                                           "--storage.tsdb.path=" + path("prom", "data"),
                                           "--web.listen-address=127.0.0.1:%d" % CFG["lab_prometheus_port"],
                                           "--web.enable-lifecycle", "--rules.alert.resend-delay=5s"],
                            "127.0.0.1", CFG["lab_prometheus_port"])
    if rules and not changed:
        # A running Prometheus (started with --web.enable-lifecycle) rereads its rule files.
        urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:%d/-/reload" % CFG["lab_prometheus_port"],
                                                      method="POST"), timeout=10).close()
    return changed or rules


def rule_files_changed():
    """Copy lab/monitoring/rules/*.yml (not the promtool *_test.yml files) into the rule_files folder."""
    src = os.path.join(ROOT, "lab", "monitoring", "rules")
    wanted = sorted(f for f in os.listdir(src) if f.endswith(".yml") and not f.endswith("_test.yml")) if os.path.isdir(src) else []
    changed = False
    for name in wanted:
        with open(os.path.join(src, name)) as f:
            changed |= write_if_changed(path("prom", "rules", name), f.read())
    return changed


# ---------------------------------------------------------------- commands

STEPS = [
    ("packages", ensure_packages), ("layout", layout), ("podman", up_podman), ("registry", up_registry),
    ("postgres", up_postgres), ("redis", up_redis), ("s3", up_s3), ("smtp", up_smtp), ("images", build_images),
    ("gateways", lambda: any([up_gateway(h, a) for h, a in CFG["lab_hosts"].items()])),
    ("health-pump", up_health_pump), ("monitoring", up_monitoring),
]


def cmd_up(args):
    t0 = time.time()
    changed = []
    for name, step in STEPS:
        if args.only and name not in args.only:
            continue
        t = time.time()
        if step():
            changed.append(name)
            log("%-12s changed (%.1fs)" % (name, time.time() - t))
    log("up in %.1fs; %s" % (time.time() - t0, "changed: " + ", ".join(changed) if changed else "nothing changed"))
    with open(path("run", "up.json"), "w") as f:
        json.dump({"changed": changed, "seconds": round(time.time() - t0, 1)}, f)


def lab_containers():
    if not os.path.exists(path("podman", "containers.conf")):
        return []
    res = podman("ps", "-a", "--filter", "label=" + LAB_LABEL, "--format", "{{.ID}}", check=False)
    return [line for line in res.stdout.split() if line]


def cmd_down(args):
    ids = lab_containers()
    if ids:
        podman("rm", "--force", "--time", "2", *ids)
        log("removed %d lab containers" % len(ids))
    for name in ["health-pump", "prometheus", "alertmanager", "smtp"] + \
            ["traefik-" + h for h in CFG["lab_hosts"]] + ["responder-" + h for h in CFG["lab_hosts"]] + \
            ["moto", "redis", "registry", "podman"]:
        stop_daemon(name)
    for node in ("replica", "primary"):
        d = path("pg", node)
        if os.path.exists(d) and pg_running(d):
            pg_run(PG_BIN + "/pg_ctl", "-D", d, "-m", "fast", "-w", "stop")
            log("stopped PostgreSQL %s" % node)
    log("down")


def cmd_status(args):
    rows = []
    for name in ["podman", "registry", "redis", "moto", "smtp", "health-pump", "prometheus", "alertmanager"] + \
            ["traefik-" + h for h in CFG["lab_hosts"]]:
        rows.append((name, "up (pid %d)" % running_pid(name) if running_pid(name) else "down"))
    for node, port in (("primary", CFG["lab_postgres_primary_port"]), ("replica", CFG["lab_postgres_replica_port"])):
        d = path("pg", node)
        state = "down"
        if os.path.exists(d) and pg_running(d):
            rec = psql(port, "select pg_is_in_recovery()")
            state = "up :%d (%s)" % (port, "in recovery" if rec == "t" else "primary")
        rows.append(("postgres-" + node, state))
    rows.append(("lab containers", str(len(lab_containers())) if running_pid("podman") else "?"))
    for name, state in rows:
        print("%-22s %s" % (name, state))
    if args.strict and any(s.startswith("down") for _, s in rows):
        raise LabError("some lab parts are down")


def cmd_clean(args):
    cmd_down(args)
    res = podman("images", "--filter", "label=io.mcp-platform.lab=true", "--format", "{{.ID}}", check=False)
    ids = sorted(set(res.stdout.split()))
    if ids:
        podman("rmi", "--force", *ids, check=False)
    shutil.rmtree(LAB, ignore_errors=True)
    log("removed %s" % LAB)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up")
    up.add_argument("--only", nargs="*", help="run only these steps")
    sub.add_parser("down")
    st = sub.add_parser("status")
    st.add_argument("--strict", action="store_true")
    sub.add_parser("clean")
    args = p.parse_args()
    os.makedirs(path("run"), exist_ok=True)
    os.makedirs(path("logs"), exist_ok=True)
    try:
        {"up": cmd_up, "down": cmd_down, "status": cmd_status, "clean": cmd_clean}[args.cmd](args)
    except LabError as e:
        print("lab: ERROR: %s" % e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
