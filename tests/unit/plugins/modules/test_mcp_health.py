# -*- coding: utf-8 -*-
"""mcp_health end to end: the real `ansible` CLI runs the module against local servers.

The collection is found through the symlink farm tests/conftest.py creates (.build/collections).
"""
from __future__ import absolute_import, division, print_function

import json
import os
import random
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
FARM = os.path.join(ROOT, ".build", "collections")
ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")


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


def ansible(args, *extra):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=FARM, ANSIBLE_LOCALHOST_WARNING="False",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="False", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_LOCAL_TEMP=os.path.join(ROOT, ".build", "ansible-tmp"), ANSIBLE_DEPRECATION_WARNINGS="False",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    env.pop("ANSIBLE_CONFIG", None)
    cmd = [ANSIBLE, "localhost", "-i", "localhost,", "-c", "local", "-m", "mcp.platform.mcp_health", "-a", json.dumps(args),
           "-e", "ansible_python_interpreter=%s" % sys.executable] + list(extra)
    # run outside the repository so its ansible.cfg (lab inventory, YAML output) does not apply
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False, cwd=os.path.join(ROOT, "tests"))
    out = proc.stdout
    result = None
    if "=> {" in out:
        body = out[out.index("=> {") + 3:]
        result = json.JSONDecoder().raw_decode(body)[0]
        result["failed"] = "localhost | FAILED!" in out  # the default callback drops the key
    return proc, result


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        code = 503 if self.path == "/down" else 200
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@pytest.fixture(scope="module")
def url():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()


@pytest.mark.parametrize("args,msg", [
    ({"checks": [{"name": "a", "type": "http", "url": "ftp://x/"}]}, "checks[0].url: must be a http:// or https:// URL"),
    ({"checks": [{"name": "ok", "type": "memory"}, {"name": "a", "type": "tcp", "host": "h"}]},
     "checks[1].port: is required for a check of type tcp"),
    ({"checks": [{"name": "a", "type": "disk", "path": "/", "warn_percent": 95, "crit_percent": 90}]},
     "checks[0].warn_percent: must be <= crit_percent (90.0), got 95.0"),
    ({"checks": [{"name": "a", "type": "disk", "path": "/", "crit_percent": 150}]}, "checks[0].crit_percent: must be between 0 and 100"),
    ({"checks": [{"name": "a", "type": "ftp"}]}, "value of type must be one of: http, mcp, tcp, tls, postgres, redis, mongodb, container"),
    ({"checks": [{"name": "a", "type": "http", "url": "http://h/", "path": "/"}]}, "checks[0].path: is not valid for a check of type http"),
    ({"checks": [{"name": "a", "type": "memory"}], "concurrency": 0}, "concurrency: must be between 1 and 1024"),
])
def test_bad_input_fails_naming_the_option(args, msg):
    proc, result = ansible(args)
    assert proc.returncode != 0
    assert result is not None, proc.stdout + proc.stderr
    assert result["failed"] is True
    assert msg in result["msg"], result["msg"]
    assert "Traceback" not in proc.stdout + proc.stderr


def test_secrets_never_in_verbose_output():
    dead = free_port()
    secrets = ["pgS3cretURL", "kvS3cret", "subOptS3cret", "r3disS3cret", "m0ngoS3cret", "tokS3cret"]
    args = {"fail_on": "crit", "timeout": 1, "checks": [
        {"name": "pg-url", "type": "postgres", "dsn": "postgresql://mcp:pgS3cretURL@127.0.0.1:%d/mcp_production" % dead},
        {"name": "pg-kv", "type": "postgres", "dsn": "host=127.0.0.1 port=%d user=mcp password=kvS3cret dbname=x" % dead},
        {"name": "pg-opt", "type": "postgres", "dsn": "postgresql://mcp@127.0.0.1:%d/db" % dead, "password": "subOptS3cret"},
        {"name": "redis", "type": "redis", "url": "redis://:r3disS3cret@127.0.0.1:%d/0" % dead},
        {"name": "mongo", "type": "mongodb", "uri": "mongodb://mcp:m0ngoS3cret@127.0.0.1:%d/?directConnection=true" % dead},
        {"name": "api", "type": "http", "url": "http://127.0.0.1:%d/" % dead, "headers": {"Authorization": "Bearer tokS3cret"}},
    ]}
    proc, result = ansible(args, "-vvv")
    text = proc.stdout + proc.stderr
    for secret in secrets:
        assert secret not in text, "%s leaked in -vvv output" % secret
    assert result["failed"] is True and proc.returncode == 2
    by_name = dict((c["name"], c) for c in result["checks"])
    assert by_name["pg-url"]["details"]["dsn"] == "postgresql://mcp:********@127.0.0.1:%d/mcp_production" % dead
    assert by_name["pg-kv"]["details"]["dsn"] == "host=127.0.0.1 port=%d user=mcp password=******** dbname=x" % dead
    assert by_name["pg-opt"]["details"]["dsn"] == "postgresql://mcp@127.0.0.1:%d/db" % dead  # no password: shown as is
    assert by_name["redis"]["details"]["url"] == "redis://:********@127.0.0.1:%d/0" % dead
    assert "pg-url: postgres mcp@127.0.0.1:%d/mcp_production: cannot connect" % dead in result["msg"]


def test_check_mode_report_and_failure(url):
    checks = [{"name": "up", "type": "http", "url": url + "/"},
              {"name": "down", "type": "http", "url": url + "/down"},
              {"name": "mem", "type": "memory", "warn_percent": 100, "crit_percent": 100}]
    args = {"fail_on": "never", "checks": checks}
    proc, result = ansible(args, "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result["changed"] is False and result["status"] == "crit" and result["nagios_code"] == 2
    assert result["failed_checks"] == [] and result["summary"]["crit"] == 1 and result["summary"]["ok"] == 2
    assert [c["name"] for c in result["checks"]] == ["up", "down", "mem"]

    args["fail_on"] = "crit"
    proc, result = ansible(args)
    assert proc.returncode == 2 and result["failed"] is True and result["changed"] is False
    assert result["msg"] == "1 of 3 health checks failed (fail_on=crit): down: HTTP 503 (expected 200) [crit]"
    assert result["failed_checks"] == ["down"]
