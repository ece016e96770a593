# -*- coding: utf-8 -*-
"""The lab service image's app (lab/images/service/app.py, official MCP SDK) run as a subprocess on 127.0.0.1
(the fixture is ``lab_app`` in tests/component/conftest.py)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from support import ROOT
from support.ports import free_port

IMAGES = Path(ROOT) / "lab" / "images"
APP = IMAGES / "service" / "app.py"
MIGRATE = IMAGES / "migrations" / "migrate.py"
SEED = IMAGES / "seed.sql"
PORTS = (34000, 34999)  # what lab/images/README.md documents


def http_get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, body


class Server:
    def __init__(self, tmp, **env):
        self.port = free_port(*PORTS)
        self.log = Path(tmp) / f"server-{self.port}.log"
        full = dict(os.environ, MCP_HOST="127.0.0.1", MCP_PORT=str(self.port), MCP_DATA_DIR=str(Path(tmp) / "data"),
                    **env)
        self.proc = subprocess.Popen([sys.executable, str(APP)], env=full, stdout=self.log.open("w"),
                                     stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                http_get(self.url + "/version")
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError("server did not start:\n" + self.log.read_text())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise
        return self.proc.returncode

    def lines(self, level, wait_for=None):
        """Log lines at `level`; with `wait_for`, wait up to 3 s for a line containing it."""
        deadline = time.monotonic() + 3
        while True:
            found = [line for line in self.log.read_text().splitlines() if f" {level} " in line]
            if wait_for is None or any(wait_for in line for line in found) or time.monotonic() > deadline:
                return found
            time.sleep(0.05)
