# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One overall deadline for an operation made of many network calls (PRIVATE to the collection).

botocore's timeouts are per attempt: an S3 endpoint that accepts connections and never answers costs read_timeout per
attempt times the retries, for every request of a listing (a daily check once hung past 200 s). A module runs in its own
process, so SIGALRM bounds the whole operation, whatever library call is waiting.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import signal
import threading


class DeadlineExceeded(BaseException):
    """The operation did not finish within its overall time limit.

    A BaseException, like KeyboardInterrupt, and not a PlatformError: it is raised asynchronously inside whatever library
    call is waiting, and botocore catches Exception around a request to retry it, which would swallow the deadline."""


@contextlib.contextmanager
def deadline(seconds, what):
    """Raise DeadlineExceeded in the calling (main) thread when ``what`` takes longer than ``seconds``.

    ``seconds`` None or 0 means no limit; off the main thread (where no alarm can be set) there is none either."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise DeadlineExceeded("%s did not finish within %d s (the overall timeout)" % (what, seconds))

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
