# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mcp.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fleet-wide operation lock kept in one file on a shared location.

Acquire is atomic: the lock's full content is written to a private temp file first and then
hard-linked to the lock path (``link`` fails if the path exists, like ``O_CREAT|O_EXCL``, but a
reader never sees a half-written lock). An expired lock is taken over by renaming it aside,
checking that what was moved is the expired lock we read (if another operator took it over in
between, their lock is put back) and then linking ours in. Release removes the file, only for
the owner unless forced.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import json
import os
import socket
import time
import uuid

from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError


class LockError(PlatformError):
    """Refused or impossible; the message is meant for the operator."""


def _iso(ts):
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_owner():
    try:
        import getpass
        user = getpass.getuser()
    except Exception:  # pylint: disable=broad-except
        user = str(os.getuid())
    return "%s@%s" % (user, socket.gethostname())


def read(path):
    """The lock's content (dict) or None when there is no lock. Unreadable content → LockError."""
    try:
        with open(path, "r") as fh:
            raw = fh.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise LockError("cannot read lock %s: %s" % (path, exc))
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise LockError("lock file %s is not a valid lock (%s); inspect it and remove it by hand" % (path, exc))
    return data


def expired(lock, now=None):
    now = time.time() if now is None else now
    return lock.get("expires_ts") is not None and float(lock["expires_ts"]) <= now


def describe(lock, now=None):
    now = time.time() if now is None else now
    if not lock:
        return "no lock"
    exp = lock.get("expires_at") or "never"
    left = ""
    if lock.get("expires_ts") is not None:
        secs = float(lock["expires_ts"]) - now
        left = " (%s)" % ("expired %d s ago" % -secs if secs <= 0 else "%d s left" % secs)
    return "held by %s for operation %r since %s, expires %s%s" % (
        lock.get("owner"), lock.get("operation"), lock.get("acquired_at"), exp, left)


def public(lock, now=None):
    if not lock:
        return {}
    out = dict(lock)
    out["expired"] = expired(lock, now)
    return out


def _write_temp(path, content):
    d = os.path.dirname(os.path.abspath(path)) or "."
    tmp = os.path.join(d, ".%s.%s.tmp" % (os.path.basename(path), uuid.uuid4().hex))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, json.dumps(content, sort_keys=True, indent=1).encode("utf-8") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


def _link_in(tmp, path):
    """Publish tmp at path unless path exists. True on success."""
    try:
        os.link(tmp, path)
        return True
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            return False
        if exc.errno in (errno.EPERM, errno.ENOTSUP, getattr(errno, "EOPNOTSUPP", errno.ENOTSUP)):
            # File systems without hard links: O_EXCL create (content written right after).
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except OSError as exc2:
                if exc2.errno == errno.EEXIST:
                    return False
                raise
            with open(tmp, "rb") as src:
                os.write(fd, src.read())
            os.fsync(fd)
            os.close(fd)
            return True
        raise
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def acquire(path, owner, operation=None, ttl=None, now=None, check_mode=False):
    """Take the lock. Returns dict(changed, lock, taken_over, msg). Raises LockError when held by another."""
    now = time.time() if now is None else now
    if ttl is not None and float(ttl) <= 0:
        raise LockError("ttl must be a positive number of seconds (got %r)" % (ttl,))
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise LockError("the lock folder %s does not exist" % d)
    content = dict(owner=owner, operation=operation, acquired_at=_iso(now), acquired_ts=now,
                   expires_at=_iso(now + float(ttl)) if ttl else None,
                   expires_ts=(now + float(ttl)) if ttl else None,
                   ttl=ttl, host=socket.gethostname(), pid=os.getpid(), token=uuid.uuid4().hex)
    for _attempt in range(5):
        current = read(path)
        if current is not None:
            if current.get("owner") == owner and not expired(current, now):
                if operation and current.get("operation") and current.get("operation") != operation:
                    raise LockError("lock %s is already held by this owner (%s) for another operation %r, not %r"
                                    % (path, owner, current.get("operation"), operation))
                return dict(changed=False, lock=public(current, now), taken_over=None,
                            msg="already held by %s" % owner)
            if not expired(current, now):
                raise LockError("lock %s is %s" % (path, describe(current, now)))
            if check_mode:
                return dict(changed=True, lock=public(content, now), taken_over=public(current, now),
                            msg="would take over the expired lock (%s)" % describe(current, now))
            aside = "%s.expired.%s" % (path, uuid.uuid4().hex)
            try:
                os.rename(path, aside)
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    continue  # someone else moved it; look again
                raise
            moved = read(aside)
            if moved is None or moved.get("token") != current.get("token"):
                # We moved a fresh lock that replaced the expired one: put it back.
                try:
                    os.link(aside, path)
                except OSError:
                    pass
                os.unlink(aside)
                continue
            os.unlink(aside)
            tmp = _write_temp(path, content)
            if _link_in(tmp, path):
                return dict(changed=True, lock=public(content, now), taken_over=public(current, now),
                            msg="took over the expired lock (%s)" % describe(current, now))
            continue
        if check_mode:
            return dict(changed=True, lock=public(content, now), taken_over=None, msg="would acquire %s" % path)
        tmp = _write_temp(path, content)
        if _link_in(tmp, path):
            return dict(changed=True, lock=public(content, now), taken_over=None, msg="acquired %s" % path)
    current = read(path)
    raise LockError("lock %s is %s" % (path, describe(current, now)))


def release(path, owner, force=False, now=None, check_mode=False):
    """Drop the lock. Only its owner may, unless ``force``. Returns dict(changed, lock, msg)."""
    now = time.time() if now is None else now
    current = read(path)
    if current is None:
        return dict(changed=False, lock={}, msg="%s is not locked" % path)
    if current.get("owner") != owner and not force:
        raise LockError("refusing to release lock %s: it is %s, not by %s (use force=true to break it)"
                        % (path, describe(current, now), owner))
    if check_mode:
        return dict(changed=True, lock=public(current, now), msg="would release (%s)" % describe(current, now))
    aside = "%s.release.%s" % (path, uuid.uuid4().hex)
    try:
        os.rename(path, aside)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return dict(changed=False, lock={}, msg="%s is not locked" % path)
        raise
    moved = read(aside)
    if moved is not None and moved.get("token") != current.get("token"):
        try:
            os.link(aside, path)
        finally:
            os.unlink(aside)
        raise LockError("lock %s changed hands while releasing: %s" % (path, describe(moved, now)))
    os.unlink(aside)
    return dict(changed=True, lock=public(current, now), msg="released (%s)" % describe(current, now))


def status(path, now=None):
    now = time.time() if now is None else now
    current = read(path)
    return dict(changed=False, locked=bool(current) and not expired(current, now), lock=public(current, now),
                msg=describe(current, now))
