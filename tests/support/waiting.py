# -*- coding: utf-8 -*-
"""Polling until something is true: a condition, a listening port."""

import socket
import time


def wait_for(pred, timeout, interval=0.1):
    """Call ``pred`` until it returns true (exceptions count as false); AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if pred():
                return True
        except Exception:  # pylint: disable=broad-except
            pass
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %s s" % timeout)
        time.sleep(interval)


def wait_port(port, timeout=30.0, proc=None, host="127.0.0.1", what="server"):
    """Until ``host:port`` accepts connections; RuntimeError when ``proc`` (the server) exits first or on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode("utf-8", "replace")[-2000:] if proc.stderr else ""
            raise RuntimeError("%s exited: %s" % (what, err))
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("%s did not listen on %d" % (what, port))
