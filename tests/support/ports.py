# -*- coding: utf-8 -*-
"""The one ``free_port`` of the test suite."""

import os
import socket

_GIVEN = set()


def _bindable(host, port):
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(lo=None, hi=None, host="127.0.0.1"):
    """A TCP port on ``host`` that nothing is bound to now and that this process has not handed out before.

    Without ``lo``/``hi`` the kernel picks it (bind to port 0): never a port that is in use, from the ephemeral range
    (32768-60999 by default), so never one of the lab's fixed ports (25000-29999), and no two pytest-xdist workers get
    the same one. The earlier per-file ranges (31000-34999) only kept files apart; nothing depends on them except what
    lab/images/README.md documents for test_lab_images (34000-34999), which passes its range.

    With ``lo``/``hi``: the first free port of that range, counting from an offset that differs per process.
    A port nobody listens on (for "connection refused") is a free port too. In-process servers bind port 0 themselves.
    """
    if lo is None and hi is None:
        for _attempt in range(100):
            with socket.socket() as sock:
                sock.bind((host, 0))
                port = sock.getsockname()[1]
            if port not in _GIVEN:
                _GIVEN.add(port)
                return port
        raise RuntimeError("the kernel keeps handing out ports this process already used")
    span = hi - lo + 1
    for i in range(span):
        port = lo + (os.getpid() + i) % span
        if port not in _GIVEN and _bindable(host, port):
            _GIVEN.add(port)
            return port
    raise RuntimeError("no free port in %d-%d" % (lo, hi))


def answers(host, port, timeout=1.0):
    """Whether something accepts TCP connections on ``host:port`` (a lab service, a server just started)."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False
