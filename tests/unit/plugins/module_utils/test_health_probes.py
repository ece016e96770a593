# -*- coding: utf-8 -*-
"""health_probes: validation, secret masking, and every probe against real local services.

Lab-only targets (PostgreSQL, the Docker-compatible API) and MongoDB are used when reachable
and skipped with a visible reason otherwise.
"""
from __future__ import absolute_import, division, print_function

import datetime
import os
import random
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.mcp.platform.plugins.module_utils import health_probes as hp
from ansible_collections.mcp.platform.plugins.module_utils.health_probes import CheckValidationError, validate_check, validate_checks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
LAB_PG = ("127.0.0.1", 25432)
LAB_PG_REPLICA = ("127.0.0.1", 25433)
LAB_DOCKER_SOCK = os.path.join(ROOT, ".lab", "podman", "podman.sock")


def free_port():
    for _attempt in range(200):
        port = random.randint(31000, 31999)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 31000-31999")


def reachable(addr):
    try:
        socket.create_connection(addr, timeout=0.5).close()
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
def test_validate_fills_type_defaults():
    http = validate_check({"name": "a", "type": "http", "url": "http://x/health"}, 0)
    assert http["status_code"] == [200] and http["validate_certs"] is True and http["timeout"] == 5.0
    disk = validate_check({"name": "d", "type": "disk", "path": "/"}, 0, default_timeout=2)
    assert (disk["warn_percent"], disk["crit_percent"], disk["timeout"]) == (80.0, 90.0, 2.0)
    mem = validate_check({"name": "m", "type": "MEMORY"}, 0)
    assert (mem["type"], mem["warn_percent"], mem["crit_percent"]) == ("memory", 75.0, 85.0)
    tls = validate_check({"name": "t", "type": "tls", "host": "h"}, 0)
    assert (tls["port"], tls["warn_days"], tls["crit_days"], tls["validate_certs"]) == (443, 30.0, 7.0, False)
    mcp = validate_check({"name": "m", "type": "mcp", "url": "https://h/mcp/fs/mcp", "min_tools": "2", "timeout": 3}, 0)
    assert mcp["protocol_version"] == "2025-06-18" and mcp["min_tools"] == 2 and mcp["delete_session"] is True


def test_validate_treats_none_as_unset():
    """AnsibleModule fills every suboption with None; that must not trip the per-type key check."""
    spec_keys = dict((k, None) for k in hp.check_suboptions())
    spec_keys.update(name="x", type="tcp", host="h", port=80)
    out = validate_check(spec_keys, 4)
    assert out["port"] == 80 and "path" not in out


@pytest.mark.parametrize("check,option,text", [
    ({"name": "a", "type": "ftp"}, "checks[2].type", "unknown check type 'ftp'"),
    ({"type": "http", "url": "http://x"}, "checks[2].name", "is required"),
    ({"name": "a", "type": "http"}, "checks[2].url", "is required for a check of type http"),
    ({"name": "a", "type": "http", "url": "ftp://x/"}, "checks[2].url", "must be a http:// or https:// URL"),
    ({"name": "a", "type": "http", "url": "http://"}, "checks[2].url", "with a host"),
    ({"name": "a", "type": "http", "url": "http://h:99999/"}, "checks[2].url", "malformed URL"),
    ({"name": "a", "type": "http", "url": "http://h/", "status_code": [200, 700]}, "checks[2].status_code[1]", "between 100 and 599"),
    ({"name": "a", "type": "http", "url": "http://h/", "body_regex": "("}, "checks[2].body_regex", "invalid regular expression"),
    ({"name": "a", "type": "http", "url": "http://h/", "path": "/"}, "checks[2].path", "not valid for a check of type http"),
    ({"name": "a", "type": "http", "url": "http://h/", "bogus": 1}, "checks[2].bogus", "unknown option"),
    ({"name": "a", "type": "tcp", "host": "h", "port": 0}, "checks[2].port", "between 1 and 65535"),
    ({"name": "a", "type": "tcp", "host": "h", "port": "http"}, "checks[2].port", "must be a number"),
    ({"name": "a", "type": "tcp", "host": "h"}, "checks[2].port", "is required"),
    ({"name": "a", "type": "tls", "host": "h", "warn_days": 5, "crit_days": 10}, "checks[2].warn_days", "must be >= crit_days"),
    ({"name": "a", "type": "disk", "path": "/", "warn_percent": 101}, "checks[2].warn_percent", "between 0 and 100"),
    ({"name": "a", "type": "disk", "path": "/", "crit_percent": -1}, "checks[2].crit_percent", "between 0 and 100"),
    ({"name": "a", "type": "memory", "warn_percent": 90, "crit_percent": 80}, "checks[2].warn_percent", "must be <= crit_percent"),
    ({"name": "a", "type": "postgres", "dsn": "mysql://u:p@h/db"}, "checks[2].dsn", "postgresql:// URI"),
    ({"name": "a", "type": "postgres", "dsn": "justahost"}, "checks[2].dsn", "key=value"),
    ({"name": "a", "type": "postgres", "dsn": "host=h", "expect_role": "leader"}, "checks[2].expect_role", "primary, replica"),
    ({"name": "a", "type": "redis", "url": "http://h:6379"}, "checks[2].url", "redis://"),
    ({"name": "a", "type": "mongodb", "uri": "postgres://h"}, "checks[2].uri", "mongodb://"),
    ({"name": "a", "type": "container", "service": "fs", "docker_host": "/var/run/docker.sock"}, "checks[2].docker_host", "unix://"),
    ({"name": "a", "type": "container"}, "checks[2].service", "is required"),
    ({"name": "a", "type": "container", "service": "fs", "min_replicas": 1.5}, "checks[2].min_replicas", "must be an integer"),
    ({"name": "a", "type": "memory", "timeout": 0}, "checks[2].timeout", "between"),
    ({"name": "a", "type": "http", "url": "http://h/", "headers": "x"}, "checks[2].headers", "dictionary"),
    ({"name": "a", "type": "http", "url": "http://h/", "validate_certs": "maybe"}, "checks[2].validate_certs", "boolean"),
])
def test_validate_errors_name_the_option(check, option, text):
    with pytest.raises(CheckValidationError) as err:
        validate_check(check, 2)
    assert err.value.option == option
    assert str(err.value).startswith(option + ": ")
    assert text in str(err.value)
    assert isinstance(err.value, ValueError)


def test_validate_error_does_not_echo_secrets():
    with pytest.raises(CheckValidationError) as err:
        validate_check({"name": "a", "type": "mongodb", "uri": "mysql://root:hunter2@db/x"}, 0)
    assert "hunter2" not in str(err.value)
    with pytest.raises(CheckValidationError) as err:
        validate_check({"name": "a", "type": "redis", "url": "http://:hunter2@h/"}, 0)
    assert "hunter2" not in str(err.value) and "********" in str(err.value)


def test_validate_checks_duplicate_names_and_type():
    with pytest.raises(CheckValidationError) as err:
        validate_checks([{"name": "a", "type": "memory"}, {"name": "a", "type": "memory"}])
    assert err.value.option == "checks[1].name" and "duplicate" in str(err.value)
    with pytest.raises(CheckValidationError):
        validate_checks({"name": "a"})
    with pytest.raises(CheckValidationError) as err:
        validate_checks(["memory"])
    assert err.value.option == "checks[0]"


def test_suboptions_cover_every_field():
    spec = hp.check_suboptions()
    assert set(spec) == set(hp.FIELD_KINDS)
    for fields in hp.TYPE_FIELDS.values():
        assert set(fields) <= set(spec)
    assert all(spec[k]["no_log"] for k in ("dsn", "uri", "password"))
    assert spec["type"]["choices"] == list(hp.CHECK_TYPES)


# --------------------------------------------------------------------------------------------
# masking
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw,masked", [
    ("postgresql://mcp:s3cr%40t@db1:5432/mcp_production", "postgresql://mcp:********@db1:5432/mcp_production"),
    ("postgresql://mcp:p@ss@host/db", "postgresql://mcp:********@host/db"),
    ("postgresql://mcp@host/db", "postgresql://mcp@host/db"),
    ("postgresql://host/db?user=mcp&password=pw1&sslmode=require", "postgresql://host/db?user=mcp&password=********&sslmode=require"),
    ("host=db1 user=mcp password=pw2 dbname=x", "host=db1 user=mcp password=******** dbname=x"),
    ("host=db1 password = 'a b\\'c' dbname=x", "host=db1 password = ******** dbname=x"),
    ("mongodb://u:pw3@h1:27017,h2:27017/mcp?replicaSet=rs0", "mongodb://u:********@h1:27017,h2:27017/mcp?replicaSet=rs0"),
    ("redis://:pw4@cache:6379/0", "redis://:********@cache:6379/0"),
    ("error connecting to postgresql://a:b@c/d: refused", "error connecting to postgresql://a:********@c/d: refused"),
])
def test_mask_text(raw, masked):
    assert hp.mask_text(raw) == masked


def test_mask_known_secrets_and_nested():
    secrets = hp.check_secrets({"password": "topsecret", "dsn": "postgresql://u:p%40w@h/d",
                                "headers": {"Authorization": "Bearer tok123", "Accept": "text/plain"}})
    assert {"topsecret", "p%40w", "p@w", "Bearer tok123"} <= secrets and "text/plain" not in secrets
    value = {"a": ["auth failed for topsecret", {"b": "Bearer tok123 p@w"}], "n": 3}
    assert hp.mask_value(value, secrets) == {"a": ["auth failed for ********", {"b": "******** ********"}], "n": 3}


def test_dsn_secrets_without_password():
    assert hp.dsn_secrets("host=h user=u dbname=d") == set()
    assert hp.dsn_secrets("postgresql://u@h/d") == set()


# --------------------------------------------------------------------------------------------
# http / tcp / tls against local servers
# --------------------------------------------------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        code, body = 200, b'{"status": "ok", "version": "1.4.2"}'
        if self.path.startswith("/slow"):
            time.sleep(0.3)
        elif self.path == "/down":
            code, body = 503, b"maintenance"
        elif self.path == "/headers":
            body = ("token=%s" % self.headers.get("X-Token")).encode()
        elif self.path == "/cut":  # a chunk of 32 bytes promised, 10 sent, hang up (a proxy losing its upstream)
            self.protocol_version = "HTTP/1.1"
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b'20\r\n{"status":')
            self.close_connection = True
            return
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:  # the client gave up (timeout tests)
            pass


def _serve(server):
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def http_url():
    server = _serve(ThreadingHTTPServer(("127.0.0.1", free_port()), Handler))
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()


def _self_signed(tmp_path, days):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(u"mcp-gateway.test"), x509.IPAddress(ipaddress.ip_address(u"127.0.0.1"))]
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u"mcp-gateway.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture(scope="module")
def tls_port(tmp_path_factory):
    """An HTTPS server with a self-signed certificate that expires in 5 days."""
    cert, key = _self_signed(tmp_path_factory.mktemp("tls"), days=5)
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    _serve(server)
    yield server.server_address[1]
    server.shutdown()


def run(check):
    return hp.PROBES[check["type"]](validate_check(check, 0))


def test_http_ok_status_body_headers(http_url):
    res = run({"name": "h", "type": "http", "url": http_url + "/health", "body_regex": r'"status":\s*"ok"'})
    assert res["status"] == "ok" and res["details"]["status_code"] == 200 and res["details"]["body_matched"] is True
    res = run({"name": "h", "type": "http", "url": http_url + "/health", "body_regex": "degraded"})
    assert res["status"] == "crit" and "body does not match" in res["reason"]
    res = run({"name": "h", "type": "http", "url": http_url + "/headers", "headers": {"X-Token": "abc"}, "body_regex": "token=abc"})
    assert res["status"] == "ok"


def test_http_status_codes(http_url):
    res = run({"name": "h", "type": "http", "url": http_url + "/down"})
    assert res["status"] == "crit" and res["reason"] == "HTTP 503 (expected 200)"
    res = run({"name": "h", "type": "http", "url": http_url + "/down", "status_code": [200, 503], "body_regex": "maint"})
    assert res["status"] == "ok"


def test_http_body_cut_off_is_crit_not_a_crash(http_url):
    res = run({"name": "h", "type": "http", "url": http_url + "/cut", "body_regex": "ok"})
    assert res["status"] == "crit" and "IncompleteRead" in res["reason"], res


def test_header_values_stay_out_of_the_module_log_and_secret_ones_out_of_the_output(http_url, monkeypatch, capsys):
    """The invocation log (syslog/journal) is written before the module runs: every header value is hidden there;
    the result then shows the harmless ones and still masks the secret ones."""
    import json
    from ansible.module_utils import basic
    from ansible.module_utils.testing import patch_module_args
    from ansible_collections.mcp.platform.plugins.modules import mcp_health

    logged = []
    monkeypatch.setattr(basic.AnsibleModule, "log", lambda self, msg, log_args=None: logged.append(msg))
    args = {"checks": [{"name": "h", "type": "http", "url": http_url + "/headers", "body_regex": "token=tok-",
                        "headers": {"X-Token": "tok-s3cr3t-4711", "X-Trace-Id": "trace-visible-0815"}}]}
    with patch_module_args(args), pytest.raises(SystemExit):
        mcp_health.main()
    result = json.loads(capsys.readouterr().out)
    log = "\n".join(logged)
    assert "Invoked with" in log
    assert "tok-s3cr3t-4711" not in log and "trace-visible-0815" not in log, log
    assert result["status"] == "ok", result
    out = json.dumps(result)
    assert "tok-s3cr3t-4711" not in out
    assert "trace-visible-0815" in out


def test_http_timeout_and_refused(http_url):
    res = run({"name": "h", "type": "http", "url": http_url + "/slow", "timeout": 0.1})
    assert res["status"] == "crit" and "timed out after 0.1s" in res["reason"]
    res = run({"name": "h", "type": "http", "url": "http://127.0.0.1:%d/" % free_port()})
    assert res["status"] == "crit" and "connection refused" in res["reason"].lower()


def test_https_validate_certs(tls_port):
    url = "https://127.0.0.1:%d/health" % tls_port
    assert run({"name": "h", "type": "http", "url": url, "validate_certs": False})["status"] == "ok"
    res = run({"name": "h", "type": "http", "url": url})
    assert res["status"] == "crit" and "TLS error: self-signed certificate" in res["reason"]


@pytest.mark.parametrize("warn,crit,status", [(30, 7, "crit"), (30, 3, "warn"), (4, 3, "ok")])
def test_tls_expiry_thresholds(tls_port, warn, crit, status):
    check = {"name": "t", "type": "tls", "host": "127.0.0.1", "port": tls_port, "server_name": "mcp-gateway.test"}
    if warn != 30 or crit != 7:
        check.update(warn_days=warn, crit_days=crit)
    res = run(check)
    assert res["status"] == status, res
    d = res["details"]
    assert 4.9 < d["days_left"] <= 5.0
    assert d["subject"] == "CN=mcp-gateway.test" and "mcp-gateway.test" in d["subject_alt_names"]
    assert d["tls_version"].startswith("TLS")


def test_tls_validate_certs_self_signed_is_crit(tls_port):
    res = run({"name": "t", "type": "tls", "host": "127.0.0.1", "port": tls_port, "validate_certs": True, "crit_days": 1, "warn_days": 2})
    assert res["status"] == "crit" and res["details"]["verified"] is False and "does not verify" in res["reason"]


def test_tls_stdlib_fallback_matches_cryptography(tls_port):
    with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as sock:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with ctx.wrap_socket(sock) as tls:
            der = tls.getpeercert(binary_form=True)
    via_lib = hp._cert_info(der)
    via_stdlib = hp._cert_info_stdlib(der)
    assert abs((via_lib[0] - via_stdlib[0]).total_seconds()) < 1
    assert "mcp-gateway.test" in via_stdlib[1] and "mcp-gateway.test" in via_stdlib[3]


def test_tls_on_plain_port_is_crit(http_url):
    port = int(http_url.rsplit(":", 1)[1])
    res = run({"name": "t", "type": "tls", "host": "127.0.0.1", "port": port, "timeout": 2})
    assert res["status"] == "crit" and "TLS error" in res["reason"]


def test_tcp(http_url):
    port = int(http_url.rsplit(":", 1)[1])
    assert run({"name": "t", "type": "tcp", "host": "127.0.0.1", "port": port})["status"] == "ok"
    res = run({"name": "t", "type": "tcp", "host": "127.0.0.1", "port": free_port()})
    assert res["status"] == "crit" and res["reason"].endswith("connection refused")
    res = run({"name": "t", "type": "tcp", "host": "no-such-host.invalid", "port": 80})
    assert res["status"] == "crit" and "cannot resolve host" in res["reason"]


# --------------------------------------------------------------------------------------------
# disk / memory
# --------------------------------------------------------------------------------------------
def test_disk(tmp_path):
    res = run({"name": "d", "type": "disk", "path": str(tmp_path), "warn_percent": 1, "crit_percent": 1})
    assert res["status"] == "crit" and "crit_percent 1" in res["reason"]
    res = run({"name": "d", "type": "disk", "path": str(tmp_path), "warn_percent": 100, "crit_percent": 100})
    assert res["status"] == "ok"
    assert 0 < res["details"]["used_percent"] < 100 and res["details"]["total_bytes"] > 0
    res = run({"name": "d", "type": "disk", "path": str(tmp_path / "missing")})
    assert res["status"] == "crit" and "No such file" in res["reason"]


@pytest.mark.skipif(not os.path.exists("/proc/meminfo"), reason="no /proc/meminfo on this platform")
def test_memory():
    res = run({"name": "m", "type": "memory", "warn_percent": 0, "crit_percent": 100})
    assert res["status"] == "warn" and 0 < res["details"]["used_percent"] < 100
    assert run({"name": "m", "type": "memory", "warn_percent": 100, "crit_percent": 100})["status"] == "ok"
    assert run({"name": "m", "type": "memory", "warn_percent": 0, "crit_percent": 0})["status"] == "crit"


def test_read_meminfo_without_memavailable(tmp_path):
    path = tmp_path / "meminfo"
    path.write_text("MemTotal:       1000 kB\nMemFree:         100 kB\nBuffers:  50 kB\nCached:  50 kB\nHugePages_Total: 0\n")
    info = hp.read_meminfo(str(path))
    assert info["MemTotal"] == 1024000 and "MemAvailable" not in info and info["HugePages_Total"] == 0


# --------------------------------------------------------------------------------------------
# redis (a real redis-server when installed)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    exe = shutil.which("redis-server")
    if not exe:
        pytest.skip("redis-server is not installed; the redis probe is covered against the lab in tests/integration")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--requirepass", "r3dis-pw", "--dir", str(tmp_path_factory.mktemp("redis"))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while not reachable(("127.0.0.1", port)):
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.skip("redis-server did not start")
        time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)


def test_redis_ping_with_auth(redis_port):
    res = run({"name": "r", "type": "redis", "url": "redis://127.0.0.1:%d/0" % redis_port, "password": "r3dis-pw"})
    assert res["status"] == "ok", res
    assert res["details"]["role"] == "master" and res["details"]["redis_version"]
    res = run({"name": "r", "type": "redis", "url": "redis://:r3dis-pw@127.0.0.1:%d/1" % redis_port})
    assert res["status"] == "ok" and res["details"]["url"] == "redis://:********@127.0.0.1:%d/1" % redis_port


def test_redis_auth_failures(redis_port):
    res = run({"name": "r", "type": "redis", "url": "redis://127.0.0.1:%d" % redis_port})
    assert res["status"] == "crit" and "NOAUTH" in res["reason"]
    res = run({"name": "r", "type": "redis", "url": "redis://127.0.0.1:%d" % redis_port, "password": "wrong"})
    assert res["status"] == "crit" and ("WRONGPASS" in res["reason"] or "invalid password" in res["reason"])


def test_redis_refused_and_not_redis(http_url):
    res = run({"name": "r", "type": "redis", "url": "redis://127.0.0.1:%d" % free_port()})
    assert res["status"] == "crit" and "connection refused" in res["reason"]
    port = int(http_url.rsplit(":", 1)[1])
    res = run({"name": "r", "type": "redis", "url": "redis://127.0.0.1:%d" % port, "timeout": 2})
    assert res["status"] == "crit"


# --------------------------------------------------------------------------------------------
# postgres (lab), mongodb (MCP_TEST_MONGODB_URI), container (lab)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_postgres_refused_masks_password(monkeypatch, driver):
    if hp.lib(driver) is None:
        pytest.skip("%s is not installed" % driver)
    if driver == "psycopg":
        monkeypatch.setitem(hp._LIBS, "psycopg2", None)  # exercise the psycopg 3 fallback
    dsn = "postgresql://mcp:pg-S3cret@127.0.0.1:%d/mcp_production" % free_port()
    res = run({"name": "p", "type": "postgres", "dsn": dsn})
    assert res["status"] == "crit" and "cannot connect" in res["reason"]
    assert res["details"]["dsn"] == "postgresql://mcp:********@127.0.0.1:%s/mcp_production" % dsn.split(":")[3].split("/")[0]
    assert "pg-S3cret" not in repr(res)


def test_postgres_without_driver(monkeypatch):
    monkeypatch.setitem(hp._LIBS, "psycopg2", None)
    monkeypatch.setitem(hp._LIBS, "psycopg", None)
    res = run({"name": "p", "type": "postgres", "dsn": "host=127.0.0.1 password=pw9 dbname=x"})
    assert res["status"] == "unknown" and "neither psycopg2 nor psycopg" in res["reason"]
    assert res["details"]["dsn"] == "host=127.0.0.1 password=******** dbname=x"


def lab_pg_roles():
    """(primary, replica) addresses of the lab pair: a failover test may have swapped them."""
    roles = {}
    for addr in (LAB_PG, LAB_PG_REPLICA):
        res = run({"name": "p", "type": "postgres", "dsn": "host=%s port=%d user=postgres dbname=postgres" % addr})
        roles[res["details"].get("role")] = addr
    if set(roles) != {"primary", "replica"}:
        pytest.skip("the lab PostgreSQL pair is not a primary and a replica right now: %s" % roles)
    return roles["primary"], roles["replica"]


@pytest.mark.skipif(not reachable(LAB_PG), reason="lab PostgreSQL primary (127.0.0.1:25432) is not running (make lab-up)")
@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_postgres_lab_primary(monkeypatch, driver):
    if hp.lib(driver) is None:
        pytest.skip("%s is not installed" % driver)
    primary, _replica = lab_pg_roles()
    if driver == "psycopg":
        monkeypatch.setitem(hp._LIBS, "psycopg2", None)
    dsn = "postgresql://postgres:ignored-pw@%s:%d/postgres" % primary
    res = run({"name": "p", "type": "postgres", "dsn": dsn, "expect_role": "primary"})
    assert res["status"] == "ok", res
    assert res["details"]["role"] == "primary" and res["details"]["dsn"].startswith("postgresql://postgres:********@")
    res = run({"name": "p", "type": "postgres", "dsn": "host=%s port=%d user=postgres dbname=postgres" % primary, "expect_role": "replica"})
    assert res["status"] == "crit" and "role is primary, expected replica" in res["reason"]


@pytest.mark.skipif(not reachable(LAB_PG_REPLICA), reason="lab PostgreSQL replica (127.0.0.1:25433) is not running (make lab-up)")
def test_postgres_lab_replica():
    _primary, replica = lab_pg_roles()
    res = run({"name": "p", "type": "postgres", "dsn": "host=%s port=%d user=postgres dbname=postgres" % replica,
               "expect_role": "replica", "max_lag_seconds": 3600})
    assert res["status"] in ("ok", "warn"), res
    assert res["details"]["role"] == "replica" and res["details"]["lag_bytes"] is not None


def test_mongodb_missing_library(monkeypatch):
    monkeypatch.setitem(hp._LIBS, "pymongo", None)  # as if pymongo were not installed
    res = run({"name": "m", "type": "mongodb", "uri": "mongodb://u:pw@127.0.0.1:1/x"})
    assert res["status"] == "unknown" and "pymongo is not installed" in res["reason"]
    assert res["details"]["uri"] == "mongodb://u:********@127.0.0.1:1/x"


@pytest.mark.skipif(hp.lib("pymongo") is None, reason="pymongo is not installed")
def test_mongodb_refused_is_crit():
    start = time.monotonic()
    res = run({"name": "m", "type": "mongodb", "uri": "mongodb://127.0.0.1:%d/?directConnection=true" % free_port(), "timeout": 0.5})
    assert res["status"] == "crit"
    assert time.monotonic() - start < 5


@pytest.mark.skipif(not os.environ.get("MCP_TEST_MONGODB_URI"), reason="no MongoDB server here; set MCP_TEST_MONGODB_URI to test against one")
def test_mongodb_ping():
    res = run({"name": "m", "type": "mongodb", "uri": os.environ["MCP_TEST_MONGODB_URI"]})
    assert res["status"] == "ok", res
    assert res["details"]["server_version"]


def test_container_api_unreachable(tmp_path):
    res = run({"name": "c", "type": "container", "service": "filesystem", "docker_host": "unix://%s" % (tmp_path / "none.sock")})
    assert res["status"] == "crit" and "Docker API error" in res["reason"]


def _lab_docker():
    if not os.path.exists(LAB_DOCKER_SOCK):
        pytest.skip("lab Docker API %s is not there (make lab-up)" % LAB_DOCKER_SOCK)
    if hp.lib("docker") is None:
        pytest.skip("the docker Python SDK is not installed")
    api = hp.lib("docker").APIClient(base_url="unix://" + LAB_DOCKER_SOCK, timeout=5)
    try:
        api.ping()
    except Exception as exc:  # pylint: disable=broad-except
        pytest.skip("lab Docker API %s does not answer: %s" % (LAB_DOCKER_SOCK, exc))
    return api


def test_container_lab_unknown_service_is_crit():
    _lab_docker()
    res = run({"name": "c", "type": "container", "service": "no-such-service", "docker_host": "unix://" + LAB_DOCKER_SOCK})
    assert res["status"] == "crit" and "0/0 replicas" in res["reason"] and "fewer than min_replicas 1" in res["reason"]
    res = run({"name": "c", "type": "container", "service": "no-such-service", "docker_host": "unix://" + LAB_DOCKER_SOCK,
               "min_replicas": 0})
    assert res["status"] == "ok"


@pytest.mark.parametrize("service", ["filesystem", "git"])
def test_container_lab_service_matches_engine(service):
    """The probe must see exactly the engine's labelled containers, with their real state."""
    api = _lab_docker()
    found = api.containers(all=True, filters={"label": ["%s=%s" % (hp.SERVICE_LABEL, service)]})
    if not found:
        pytest.skip("the lab runs no %s containers yet (make lab-up deploys them)" % service)
    truth = dict((c["Id"][:12], api.inspect_container(c["Id"])) for c in found)
    res = run({"name": "c", "type": "container", "service": service, "docker_host": "unix://" + LAB_DOCKER_SOCK})
    reps = res["details"]["replicas"]
    assert sorted(r["id"] for r in reps) == sorted(truth)
    for rep in reps:
        state = truth[rep["id"]]["State"]
        assert rep["running"] == state["Running"]
        assert rep["restart_count"] == int(truth[rep["id"]].get("RestartCount") or 0)
    ready = [r for r in reps if r["running"] and r["health"] in ("healthy", "none")]
    assert res["status"] == ("crit" if not ready else ("ok" if len(ready) == len(reps) else "warn")), res
    res = run({"name": "c", "type": "container", "service": service, "docker_host": "unix://" + LAB_DOCKER_SOCK,
               "min_replicas": len(reps) + 1})
    assert res["status"] == "crit" and "fewer than min_replicas" in res["reason"]


@pytest.mark.parametrize("check,option", [
    ({"type": "container", "service": "s", "probe_path": "health"}, "checks[0].probe_path"),
    ({"type": "container", "service": "s", "probe_port": 70000}, "checks[0].probe_port"),
    ({"type": "logs", "since": 0}, "checks[0].since"),
    ({"type": "logs", "warn_errors": 5, "crit_errors": 2}, "checks[0].warn_errors"),
    ({"type": "logs", "docker_host": "/var/run/docker.sock"}, "checks[0].docker_host"),
])
def test_container_probe_and_logs_validation(check, option):
    with pytest.raises(hp.CheckValidationError) as err:
        hp.validate_check(dict(check, name="x"), 0)
    assert err.value.option == option


def test_container_lab_direct_probe_of_every_replica():
    api = _lab_docker()
    found = api.containers(filters={"label": ["%s=filesystem" % hp.SERVICE_LABEL, "io.mcp-platform.host=mcp-1"]})
    if not found:
        pytest.skip("the lab runs no filesystem containers on mcp-1 yet (make lab-up deploys them)")
    res = run({"name": "c", "type": "container", "service": "filesystem", "platform_host": "mcp-1",
               "docker_host": "unix://" + LAB_DOCKER_SOCK, "probe_path": "/version"})
    running = [r for r in res["details"]["replicas"] if r["running"]]
    assert running and all(r["probe_code"] == 200 and r["probe_url"].endswith("/version") for r in running), res
    res = run({"name": "c", "type": "container", "service": "filesystem", "platform_host": "mcp-1",
               "docker_host": "unix://" + LAB_DOCKER_SOCK, "probe_path": "/no-such-route"})
    assert res["status"] == "crit" and "answered HTTP 404" in res["reason"], res


def test_logs_lab_counts_real_container_lines():
    api = _lab_docker()
    if not api.containers(filters={"label": ["io.mcp-platform.managed=true"]}):
        pytest.skip("the lab runs no managed containers yet (make lab-up deploys them)")
    res = run({"name": "l", "type": "logs", "docker_host": "unix://" + LAB_DOCKER_SOCK, "platform_host": "mcp-1",
               "since": 3600, "warn_errors": 0, "crit_errors": 10 ** 6})
    assert res["status"] == "ok", res
    assert res["details"]["containers"] and set(res["details"]["counts"]) == {"error", "warn"}
    assert res["reason"].endswith("across %d containers" % len(res["details"]["containers"]))
