# -*- coding: utf-8 -*-
"""A moto S3 (and IAM) server in a subprocess (the session fixture is ``moto`` in tests/component/conftest.py)."""
from __future__ import absolute_import, division, print_function

import os
import subprocess

import pytest

from support.ansible_cli import VENV_BIN
from support.ports import free_port
from support.waiting import wait_port

MOTO_SERVER = os.path.join(VENV_BIN, "moto_server")


def start_moto(env_extra=None):
    """(Popen, endpoint URL) of a fresh moto_server; ``env_extra`` configures it (e.g. INITIAL_NO_AUTH_ACTION_COUNT)."""
    if not os.path.exists(MOTO_SERVER):
        pytest.skip("moto_server not installed in the venv")
    port = free_port()
    env = dict(os.environ)
    env.update(env_extra or {})
    proc = subprocess.Popen([MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wait_port(port, 30.0, proc, what="moto_server")
    return proc, "http://127.0.0.1:%d" % port


def stop(proc):
    proc.terminate()
    proc.wait(timeout=10)
