"""Shared lab infrastructure on the bridge's infrastructure address: registry, S3 (moto), Redis, SMTP sink,
Prometheus and Alertmanager, and the two things hosts need to install software without the internet: a
find-links folder of wheels (pip) and a proxy to the Debian mirror (apt). All run in the controller's
namespaces, started and stopped by PID file."""
import os
import shutil
import urllib.request

import yaml

from .common import CFG, ROOT, VENV, LabError, log, path, python, run, source_hash, start_daemon, stop_daemon, write_if_changed

INFRA = CFG["lab_infra_address"]
HERE = os.path.dirname(os.path.abspath(__file__))
DAEMONS = ["prometheus", "alertmanager", "smtp", "wheels", "apt-proxy", "moto", "redis", "registry"]


def up_registry():
    port = CFG["lab_registry_port"]
    os.makedirs(path("registry", "data"), exist_ok=True)
    write_if_changed(path("registry", "config.yml"), yaml.safe_dump({
        "version": 0.1, "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": path("registry", "data")}, "delete": {"enabled": True}},
        "http": {"addr": "%s:%d" % (INFRA, port)}}))
    return start_daemon("registry", ["docker-registry", "serve", path("registry", "config.yml")], INFRA, port)


def up_redis():
    port = CFG["lab_redis_port"]
    os.makedirs(path("redis"), exist_ok=True)
    return start_daemon("redis", ["redis-server", "--bind", INFRA, "--port", str(port), "--dir", path("redis"),
                                  "--save", "", "--appendonly", "no", "--protected-mode", "no"], INFRA, port)


def up_s3():
    port = CFG["lab_s3_port"]
    started = start_daemon("moto", [os.path.join(VENV, "bin", "moto_server"), "-H", INFRA, "-p", str(port)], INFRA, port)
    import boto3  # the venv has it; imported late so `lab.py down` works without it
    s3 = boto3.client("s3", endpoint_url="http://%s:%d" % (INFRA, port), aws_access_key_id=CFG["lab_s3_access_key"],
                      aws_secret_access_key=CFG["lab_s3_secret_key"], region_name="us-east-1")
    names = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    if CFG["lab_s3_bucket"] not in names:
        s3.create_bucket(Bucket=CFG["lab_s3_bucket"])
        started = True
    return started


def up_smtp():
    port = CFG["lab_smtp_port"]
    os.makedirs(path("smtp"), exist_ok=True)
    return start_daemon("smtp", [python(), os.path.join(ROOT, "hack", "smtp_sink.py"), "--listen",
                                 "%s:%d" % (INFRA, port), "--maildir", path("smtp")], INFRA, port)


def node_requirements():
    """What the mcp.platform.node role installs into a node's venv (its defaults are the one list)."""
    with open(os.path.join(ROOT, "roles", "node", "defaults", "main.yml")) as f:
        defaults = yaml.safe_load(f)
    reqs = list(defaults.get("node_python_packages") or [])
    if not reqs or any("{{" in r for r in reqs):
        raise LabError("roles/node/defaults/main.yml: node_python_packages must be a plain list of requirements")
    return reqs


def up_wheels():
    """A find-links folder holding every wheel the node role's requirements resolve to, served over HTTP."""
    reqs = node_requirements()
    wheels = path("cache", "wheels")
    stamp = os.path.join(wheels, ".stamp")
    want = source_hash(sorted(reqs))
    changed = False
    if not (os.path.exists(stamp) and open(stamp).read() == want):
        shutil.rmtree(wheels, ignore_errors=True)
        os.makedirs(wheels)
        log("pip download of the node venv's wheels: " + " ".join(reqs))
        run([os.path.join(VENV, "bin", "pip"), "download", "-q", "--disable-pip-version-check", "--only-binary", ":all:",
             "--dest", wheels] + reqs, what="pip download of the node wheels", timeout=600)
        with open(stamp, "w") as f:
            f.write(want)
        changed = True
    port = CFG["lab_wheels_port"]
    changed |= start_daemon("wheels", [python(), "-m", "http.server", "--bind", INFRA, "--directory", wheels, str(port)],
                            INFRA, port)
    return changed


def up_apt_proxy():
    port = CFG["lab_apt_proxy_port"]
    return start_daemon("apt-proxy", [python(), os.path.join(HERE, "apt_proxy.py"), "--listen", "%s:%d" % (INFRA, port),
                                      "--cache", path("cache", "apt")], INFRA, port)


def rule_files_changed():
    """Copy lab/monitoring/rules/*.yml (not the promtool *_test.yml files) into the rule_files folder."""
    src = os.path.join(ROOT, "lab", "monitoring", "rules")
    wanted = sorted(f for f in os.listdir(src) if f.endswith(".yml") and not f.endswith("_test.yml")) if os.path.isdir(src) else []
    changed = False
    os.makedirs(path("prom", "rules"), exist_ok=True)
    for name in wanted:
        with open(os.path.join(src, name)) as f:
            changed |= write_if_changed(path("prom", "rules", name), f.read())
    return changed


def up_monitoring(hosts):
    gateways = ["%s:%d" % (h["address"], CFG["lab_gateway_admin_port"]) for h in hosts.values() if h["kind"] == "mcp"]
    prom = {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": ["%s:%d" % (INFRA, CFG["lab_alertmanager_port"])]}]}]},
        "rule_files": [path("prom", "rules", "*.yml")],
        "scrape_configs": [
            {"job_name": "mcp-gateway", "static_configs": [{"targets": gateways}]},
            {"job_name": "mcp-node-textfile", "static_configs": []},
        ],
    }
    for d in ("prom/data", "am/data"):
        os.makedirs(path(d), exist_ok=True)
    ch = write_if_changed(path("prom", "prometheus.yml"), yaml.safe_dump(prom, sort_keys=False))
    ch |= write_if_changed(path("am", "alertmanager.yml"), yaml.safe_dump({
        "route": {"receiver": "lab", "group_wait": "1s"}, "receivers": [{"name": "lab"}]}))
    if ch:
        stop_daemon("prometheus")
    rules = rule_files_changed()
    changed = start_daemon("alertmanager", ["prometheus-alertmanager", "--config.file=" + path("am", "alertmanager.yml"),
                                            "--storage.path=" + path("am", "data"),
                                            "--web.listen-address=%s:%d" % (INFRA, CFG["lab_alertmanager_port"]),
                                            "--cluster.listen-address="],
                           INFRA, CFG["lab_alertmanager_port"])
    changed |= start_daemon("prometheus", ["prometheus", "--config.file=" + path("prom", "prometheus.yml"),
                                           "--storage.tsdb.path=" + path("prom", "data"),
                                           "--web.listen-address=%s:%d" % (INFRA, CFG["lab_prometheus_port"]),
                                           "--web.enable-lifecycle", "--rules.alert.resend-delay=5s"],
                            INFRA, CFG["lab_prometheus_port"])
    if rules and not changed:
        # A running Prometheus (started with --web.enable-lifecycle) rereads its rule files.
        urllib.request.urlopen(urllib.request.Request("http://%s:%d/-/reload" % (INFRA, CFG["lab_prometheus_port"]),
                                                      method="POST"), timeout=10).close()
    return changed or rules


def down():
    for name in DAEMONS:
        stop_daemon(name)


def daemons_status():
    from .common import running_pid
    return [(name, "up (pid %d)" % running_pid(name) if running_pid(name) else "down") for name in reversed(DAEMONS)]

