# -*- coding: utf-8 -*-
"""A real gateway for the maintenance tests: Traefik (file provider) in front of a static backend, with the lab's
maintenance responder (lab/maintenance/responder.py). The fixture is ``traefik_gateway`` in tests/component/conftest.py.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from support import ROOT
from support.ansible_cli import VENV_BIN
from support.ports import free_port

TRAEFIK = os.path.join(VENV_BIN, "traefik")
RESPONDER = os.path.join(ROOT, "lab", "maintenance", "responder.py")
GW = dict(service_provider="file", http_entrypoint="web", tls_entrypoint="websecure")


def tmpdirs():
    """(root, state, dynamic): a fresh temp folder with a maintenance state folder and a gateway dynamic folder."""
    root = tempfile.mkdtemp(prefix="mcpmt")
    state, dyn = os.path.join(root, "state"), os.path.join(root, "dynamic")
    os.makedirs(state)
    os.makedirs(dyn)
    return root, state, dyn


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def get(url, headers=None):
    """(status or None, headers, body) without following redirects."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with OPENER.open(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()
    except (urllib.error.URLError, ConnectionError, OSError) as exc:
        return None, {}, str(exc)


def wait_status(url, code, timeout, headers=None):
    """Poll ``url`` until it answers ``code``: (seconds it took, headers, body)."""
    t0 = time.monotonic()
    while True:
        status, hdrs, body = get(url, headers)
        if status == code:
            return time.monotonic() - t0, hdrs, body
        if time.monotonic() - t0 > timeout:
            raise AssertionError("%s: wanted %s within %s s, last %s %s" % (url, code, timeout, status, body[:200]))
        time.sleep(0.02)


class Gateway:
    def __init__(self):
        self.root, self.state, self.dyn = tmpdirs()
        self.web, self.tls, self.backend_port, self.responder_port = free_port(), free_port(), free_port(), free_port()
        www = os.path.join(self.root, "www")
        os.makedirs(www)
        with open(os.path.join(www, "health"), "w") as fh:
            fh.write("OK\n")
        conf = {"http": {"routers": {}, "services": {}, "middlewares": {}}}
        for svc in ("alpha", "beta"):
            rule = "PathPrefix(`/mcp/%s`)" % svc
            conf["http"]["routers"][svc] = {"rule": rule, "entryPoints": ["web"], "service": svc,
                                            "middlewares": ["%s-strip" % svc]}
            conf["http"]["routers"][svc + "-tls"] = {"rule": rule, "entryPoints": ["websecure"], "service": svc,
                                                     "middlewares": ["%s-strip" % svc], "tls": {}}
            conf["http"]["services"][svc] = {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:%d" % self.backend_port}]}}
            conf["http"]["middlewares"][svc + "-strip"] = {"stripPrefix": {"prefixes": ["/mcp/%s" % svc]}}
        with open(os.path.join(self.dyn, "backends.yml"), "w") as fh:
            json.dump(conf, fh)
        self.backend = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(self.backend_port),
                                         "--directory", www], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.responder = subprocess.Popen(["python3", RESPONDER, "--listen", "127.0.0.1:%d" % self.responder_port,
                                           "--state-file", os.path.join(self.state, "maintenance.json"), "--quiet"],
                                          stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.root, "responder.log"), "w"))
        self.traefik = None
        try:
            self.start_traefik()
            self.wait_ready()
        except BaseException:
            self.close()
            raise

    def wait_ready(self):
        try:
            wait_status(self.url("alpha"), 200, 20)
            wait_status(self.url("beta"), 200, 5)
        except AssertionError as exc:
            log = open(os.path.join(self.root, "traefik.log")).read()[-2000:]
            raise AssertionError("%s; traefik rc=%s, log: %s" % (exc, self.traefik.poll(), log))

    def start_traefik(self):
        self.traefik = subprocess.Popen(
            [TRAEFIK, "--global.checkNewVersion=false", "--global.sendAnonymousUsage=false", "--log.level=ERROR",
             "--entryPoints.web.address=127.0.0.1:%d" % self.web, "--entryPoints.websecure.address=127.0.0.1:%d" % self.tls,
             "--providers.file.directory=%s" % self.dyn, "--providers.file.watch=true"],
            stdout=open(os.path.join(self.root, "traefik.log"), "a"), stderr=subprocess.STDOUT)

    def stop_traefik(self):
        self.traefik.send_signal(signal.SIGTERM)
        try:
            self.traefik.wait(15)
        except subprocess.TimeoutExpired:
            self.traefik.kill()
            self.traefik.wait()

    def url(self, svc, path="/health"):
        return "http://127.0.0.1:%d/mcp/%s%s" % (self.web, svc, path)

    def gateway(self):
        return dict(GW, dynamic_dir=self.dyn, responder_url="http://127.0.0.1:%d" % self.responder_port)

    def close(self):
        for proc in (self.traefik, self.backend, self.responder):
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)
