"""daily_check.yml against the lab of real hosts: the real effect on the report, each fault, a host lost."""
import email
import email.policy
import glob
import json
import os
import subprocess
import threading
import time
import uuid

import pytest
from conftest import LAB_DIR, adhoc_one, host_path, pg_roles, run_playbook, wait_until

pytestmark = pytest.mark.lab


def daily_check(tmp_path, *extra, check=True):
    report_dir = tmp_path / "reports"
    res = run_playbook("daily_check.yml", "-e", "daily_check_report_dir=%s" % report_dir,
                       "-e", "daily_check_fail_on=never", *extra, check=check)
    with open(report_dir / "latest.json") as f:
        return res, json.load(f)


def rows(report, host):
    h = [x for x in report["hosts"] if x["host"] == host][0]
    return {c["name"]: c for c in h["checks"]}


@pytest.fixture(scope="module")
def backup_prefix(lab, tmp_path_factory):
    """A real, verified backup set in the lab's S3 store, under a prefix of this test module. Made from the
    controller (S3 only: the folder backed up is the controller's own), as an AWX job without hosts would."""
    prefix = "test-daily-check-%s" % uuid.uuid4().hex[:8]
    src = tmp_path_factory.mktemp("cfg")
    (src / "platform.env").write_text("VERSION=1.0.0\n")
    s3 = dict(target="s3", s3_endpoint_url=lab["s3_endpoint"], s3_bucket=lab["lab_s3_bucket"],
              s3_prefix=prefix, s3_access_key=lab["lab_s3_access_key"], s3_secret_key=lab["lab_s3_secret_key"])
    made = adhoc_one("mcp.platform.mcp_backup", dict(s3, state="present", components=["config"], config_paths=[str(src)]))
    assert made.get("changed") and not made.get("failed"), made
    verified = adhoc_one("mcp.platform.mcp_backup", dict(s3, state="verified", backup_id=made["set_id"]))
    assert not verified.get("failed"), verified
    return prefix


def test_healthy_lab_is_all_green_with_every_report(lab, tmp_path, backup_prefix):
    maildir = os.path.join(LAB_DIR, "smtp")
    before = set(glob.glob(os.path.join(maildir, "*.eml")))
    res, report = daily_check(tmp_path, "-e", "daily_check_backup_s3_prefix=%s" % backup_prefix,
                              "-e", '{"daily_check_email_to": ["ops@example.com"]}')
    bad = {h["host"]: [(c["name"], c["status"], c["reason"]) for c in h["checks"] if c["status"] != "ok"]
           for h in report["hosts"]}
    assert report["status"] == "ok", bad
    assert sorted(h["host"] for h in report["hosts"]) == ["mcp-1", "mcp-2", "mcp-3"]
    r = rows(report, "mcp-1")
    for svc in lab["lab_services"]:
        assert r["gateway/%s" % svc]["status"] == "ok"
        assert "tools" in r["mcp/%s" % svc]["reason"]
        assert r["replicas/%s" % svc]["status"] == "ok"
    assert len([n for n in r if n.startswith("replica/")]) == 2 * len(lab["lab_services"])
    assert {c["step"] for c in report["hosts"][0]["checks"]} == {1, 2, 3, 4, 5, 6, 7}
    assert "days left" in r["tls %s:%d" % (lab["lab_hosts"]["mcp-1"], lab["lab_gateway_https_port"])]["reason"]
    # every host reported what it sees itself: its own engine's replicas, bound to its own address
    for host in ("mcp-2", "mcp-3"):
        replicas = [c for n, c in rows(report, host).items() if n.startswith("replica/")]
        assert replicas and all(c["name"].startswith("replica/%s-" % host) for c in replicas)
    assert r["backup"]["status"] == "ok" and "h old" in r["backup"]["reason"]
    # the terminal summary: one line per host
    assert "3 hosts: 3 ok, 0 warn, 0 crit, 0 unknown" in res.stdout
    # the HTML page: self-contained, one table per host
    html = (tmp_path / "reports" / "latest.html").read_text()
    assert html.count("<table>") == 4 and "<script" not in html and "http://" not in html.split("<body>")[0]
    # Prometheus textfile metrics
    prom = (tmp_path / "reports" / "mcp_daily_check.prom").read_text()
    assert 'mcp_check_status{host="mcp-2",check="gateway/git"} 0' in prom
    assert 'mcp_check_latency_seconds{host="mcp-3",check="mcp/filesystem"}' in prom
    # the email reached the SMTP sink with the HTML report and the JSON attached
    deadline = time.time() + 10
    while time.time() < deadline and not set(glob.glob(os.path.join(maildir, "*.eml"))) - before:
        time.sleep(0.2)
    new = sorted(set(glob.glob(os.path.join(maildir, "*.eml"))) - before)
    assert new, "no message reached the lab SMTP sink"
    with open(new[-1], "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    assert msg["To"] == "ops@example.com" and msg["Subject"].startswith("[OK] MCP daily check")
    parts = {p.get_content_type(): p for p in msg.walk()}
    assert "text/html" in parts and "mcp-3" in parts["text/html"].get_content()
    assert any(p.get_filename() and p.get_filename().endswith(".json") for p in msg.walk())


def test_stopped_replica_makes_only_its_checks_crit(lab, tmp_path, engines):
    ctr = list(engines.containers("mcp-2", service="git", replica="1").values())[0]
    name = ctr.name
    ctr.stop(timeout=5)
    try:
        _res, report = daily_check(tmp_path)
    finally:
        ctr.start()
    r2 = rows(report, "mcp-2")
    crit = sorted(n for n, c in r2.items() if c["status"] == "crit" and n != "backup")
    assert crit == ["replica/%s" % name, "replicas/git"], crit
    assert r2["replica/%s" % name]["reason"].startswith("exited"), r2["replica/%s" % name]
    assert "1/2" in r2["replicas/git"]["reason"]
    assert r2["gateway/git"]["status"] == "ok"  # the other replica still serves
    for host in ("mcp-1", "mcp-3"):
        assert not [n for n, c in rows(report, host).items() if c["status"] == "crit" and n != "backup"]
    deadline = time.time() + 60
    while time.time() < deadline:
        ctr.reload()
        if ctr.attrs["State"].get("Health", {}).get("Status") == "healthy":
            break
        time.sleep(0.5)


def test_gateway_certificate_expiring_in_five_days(lab, tmp_path):
    # the host's own /etc/mcp/tls and the gateway's dynamic folder, written from the controller (the lab's view)
    tls = host_path("mcp-3", "/etc/mcp/tls")
    dyn = host_path("mcp-3", "/var/lib/mcp/gateway/dynamic/tls.yml")
    crt, key = os.path.join(tls, "gateway.crt"), os.path.join(tls, "gateway.key")
    saved = {p: open(p, "rb").read() for p in (crt, key)}
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "5", "-subj", "/CN=mcp-3", "-addext", "subjectAltName=IP:%s" % lab["lab_hosts"]["mcp-3"]],
                   check=True, capture_output=True)
    dyn_text = open(dyn).read()
    try:
        with open(dyn, "w") as f:  # Traefik reloads certificates when its dynamic file changes
            f.write(dyn_text + "# rotated %s\n" % time.time())
        tls_row = "tls %s:%d" % (lab["lab_hosts"]["mcp-3"], lab["lab_gateway_https_port"])
        deadline = time.time() + 20
        while True:
            _res, report = daily_check(tmp_path, "--limit", "mcp-3,localhost")
            row = rows(report, "mcp-3")[tls_row]
            if "4." in row["reason"] or "5.0 days" in row["reason"] or time.time() > deadline:
                break
            time.sleep(1)
        assert row["status"] == "crit", row  # default thresholds 30/7
        _res, report = daily_check(tmp_path, "--limit", "mcp-3,localhost", "-e", "daily_check_tls_crit_days=3")
        assert rows(report, "mcp-3")[tls_row]["status"] == "warn"
    finally:
        for p, data in saved.items():
            with open(p, "wb") as f:
                f.write(data)
        with open(dyn, "w") as f:
            f.write(dyn_text)


def test_postgres_primary_stopped_is_crit(lab, tmp_path, lab_host):
    primary = [n for n, r in pg_roles().items() if r == "primary"][0]
    pg_ctl = ["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_ctl", "-D", "/var/lib/postgresql/15/main"]
    lab_host.execute(primary, pg_ctl + ["-m", "fast", "-w", "stop"])
    try:
        _res, report = daily_check(tmp_path, "--limit", "mcp-1,localhost")
    finally:
        lab_host.execute(primary, pg_ctl + ["-l", "/var/log/postgresql/postgresql.log", "-w", "start"])
    row = rows(report, "mcp-1")["postgres"]
    assert row["status"] == "crit", row
    assert lab["lab_db_password"] not in json.dumps(report)


def test_disk_threshold_one_percent_is_crit(lab, tmp_path):
    _res, report = daily_check(tmp_path, "--limit", "mcp-1,localhost", "-e", "daily_check_disk_warn_percent=0",
                               "-e", "daily_check_disk_crit_percent=1")
    disk = {n: c for n, c in rows(report, "mcp-1").items() if n.startswith("disk ")}
    assert disk and all(c["status"] == "crit" for c in disk.values()), disk


def test_no_secret_in_verbose_output(lab, tmp_path):
    res, _unused = daily_check(tmp_path, "--limit", "mcp-2,localhost", "-vvv")
    assert lab["lab_db_password"] not in res.stdout
    assert lab["lab_s3_secret_key"] not in res.stdout


def _health(args, host="mcp-1"):
    """mcp_health run on an MCP host over SSH, as the daily check runs it (its engine and network are the host's)."""
    return adhoc_one("mcp.platform.mcp_health", args, host=host)


def test_mcp_check_crit_when_health_200_but_handshake_fails(lab, engines):
    image = "%s/mcp-platform/git:0.9.0-broken-mcp" % lab["registry"]
    addr = lab["hosts"]["mcp-1"]
    ctr = engines["mcp-1"].containers.run(image, detach=True, ports={"8080/tcp": (addr, None)},
                                          labels={"io.mcp-platform.lab": "true", "io.mcp-platform.test": "broken-mcp"},
                                          name="lab-test-broken-mcp-%s" % uuid.uuid4().hex[:6])
    try:
        port = None
        for _unused in range(50):
            ctr.reload()
            ports = ctr.attrs["NetworkSettings"]["Ports"].get("8080/tcp")
            if ports:
                port = ports[0]["HostPort"]
                break
            time.sleep(0.1)
        base = "http://%s:%s" % (addr, port)
        out = _health({"checks": [{"name": "health", "type": "http", "url": base + "/health"},
                                  {"name": "mcp", "type": "mcp", "url": base + "/mcp"}],
                       "wait": True, "wait_timeout": 15, "fail_on": "never"})
        by = {c["name"]: c for c in out["checks"]}
        assert by["health"]["status"] == "ok"
        assert by["mcp"]["status"] == "crit", by["mcp"]
    finally:
        ctr.remove(force=True)


def test_wait_succeeds_for_a_late_replica_and_times_out_without_one(lab, engines):
    svc = "waittest%s" % uuid.uuid4().hex[:6]
    image = "%s/mcp-platform/filesystem:%s" % (lab["registry"], lab["lab_initial_version"])
    labels = {"io.mcp-platform.lab": "true", "io.mcp-platform.managed": "true", "io.mcp-platform.service": svc,
              "io.mcp-platform.host": "lab-test"}
    # the module's default engine address is the host's own (unix:///var/run/docker.sock)
    check = {"name": "late", "type": "container", "service": svc, "platform_host": "lab-test", "min_replicas": 1}
    started = []

    def start_late():
        time.sleep(5)
        started.append(engines["mcp-1"].containers.run(image, detach=True, labels=labels, name=svc,
                                                       ports={"8080/tcp": (lab["hosts"]["mcp-1"], None)}))

    t = threading.Thread(target=start_late)
    t.start()
    try:
        t0 = time.time()
        out = _health({"checks": [check], "wait": True, "wait_timeout": 60, "interval": 1})
        took = time.time() - t0
        assert not out.get("failed"), out.get("msg")
        assert out["checks"][0]["status"] == "ok" and 5 <= took < 60
    finally:
        t.join()
        for c in started:
            c.remove(force=True)
    t0 = time.time()
    out = _health({"checks": [check, {"name": "memory", "type": "memory"}], "wait": True, "wait_timeout": 4,
                   "interval": 1})
    assert out.get("failed") and 4 <= time.time() - t0 < 30
    assert "late" in out["msg"] and "memory" not in out["msg"].split("unhealthy", 1)[-1]


def test_a_killed_host_is_reported_unreachable_and_the_others_complete(lab, tmp_path, lab_host, backup_prefix):
    """mcp-2 is gone (every process killed, its address silent): the report names it crit with the reason,
    mcp-1 and mcp-3 are checked in full, and the run exits non-zero."""
    lab_host.kill("mcp-2")
    report_dir = tmp_path / "reports"
    t0 = time.time()
    res = run_playbook("daily_check.yml", "-e", "daily_check_report_dir=%s" % report_dir,
                       "-e", "daily_check_backup_s3_prefix=%s" % backup_prefix, check=False)
    took = time.time() - t0
    assert res.returncode != 0, res.stdout[-3000:]
    with open(report_dir / "latest.json") as f:
        report = json.load(f)
    assert report["status"] == "crit"
    lost = rows(report, "mcp-2")
    assert list(lost) == ["reachable"], lost
    assert lost["reachable"]["status"] == "crit"
    assert "unreachable" in lost["reachable"]["reason"] and lab["hosts"]["mcp-2"] in lost["reachable"]["reason"]
    for host in ("mcp-1", "mcp-3"):
        r = rows(report, host)
        assert {c["step"] for c in r.values()} == {1, 2, 3, 4, 5, 6, 7}, host
        assert all(r["gateway/%s" % s]["status"] == "ok" for s in lab["lab_services"]), host
    bad = {h["host"]: [(c["name"], c["status"], c["reason"]) for c in h["checks"] if c["status"] != "ok"]
           for h in report["hosts"]}
    assert "3 hosts: 0 ok" not in report["summary"] and "1 crit" in report["summary"], bad
    assert took < 90, "a lost host must not stall the check (%.0f s)" % took
    lab_host.boot("mcp-2")

    def serving():
        import urllib.request
        try:
            with urllib.request.urlopen("http://%s:8080/mcp/git/health" % lab["hosts"]["mcp-2"], timeout=3) as r:
                return r.status == 200
        except OSError:
            return False
    wait_until(serving, timeout=90, what="mcp-2 serving again after its boot")
