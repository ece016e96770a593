# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streaming pipeline: producer subprocess -> zstd -> SHA-256 -> sink, and back.

Nothing is staged on disk: the producer's stdout is read in ``CHUNK`` sized blocks,
fed to a zstandard compression object (multithreaded when ``threads`` > 0), and
every compressed block is hashed and handed to the target writer (which itself
buffers at most a few multipart parts). Memory stays bounded by
``CHUNK + zstd window + part_size * (max_in_flight + 1)``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import hashlib
import os
import subprocess
import threading

from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError
from ansible_collections.mcp.platform.plugins.module_utils.node_requirements import missing_library_msg

try:
    import zstandard
    HAS_ZSTD = True
    ZSTD_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    HAS_ZSTD = False
    ZSTD_IMPORT_ERROR = exc

CHUNK = 1024 * 1024


class Cancelled(Exception):
    """Another component failed; this one stops without publishing anything."""


class ProducerError(PlatformError):
    """A subprocess producing or consuming a stream failed."""


class _StderrTail(threading.Thread):
    def __init__(self, stream, limit=64 * 1024):
        super(_StderrTail, self).__init__(daemon=True)
        self.stream = stream
        self.buf = collections.deque()
        self.size = 0
        self.limit = limit

    def run(self):
        for line in iter(self.stream.readline, b''):
            self.buf.append(line)
            self.size += len(line)
            while self.size > self.limit and len(self.buf) > 1:
                self.size -= len(self.buf.popleft())

    def text(self, max_chars=2000):
        self.join(timeout=5)
        return b''.join(self.buf).decode('utf-8', 'replace').strip()[-max_chars:]


class ProcessSource:
    """Run ``argv`` (a list, never a shell) and stream its stdout."""

    def __init__(self, argv, env=None, ok_codes=(0,), cwd=None, label=None):
        self.argv = list(argv)
        self.env = env
        self.ok_codes = tuple(ok_codes)
        self.cwd = cwd
        self.label = label or os.path.basename(self.argv[0])
        self.proc = None
        self._stderr = None
        self.returncode = None

    def start(self):
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         env=self.env, cwd=self.cwd, close_fds=True)
        except OSError as exc:
            raise ProducerError('cannot run %s: %s' % (self.label, exc))
        self._stderr = _StderrTail(self.proc.stderr)
        self._stderr.start()
        return self

    def chunks(self, cancel=None):
        if self.proc is None:
            self.start()
        read = self.proc.stdout.read
        while True:
            if cancel is not None and cancel.is_set():
                self.kill()
                raise Cancelled()
            data = read(CHUNK)
            if not data:
                break
            yield data
        self.finish()

    def finish(self):
        self.returncode = self.proc.wait()
        self.proc.stdout.close()
        if self.returncode not in self.ok_codes:
            raise ProducerError('%s exited with status %s: %s' % (self.label, self.returncode, self._stderr.text() or 'no error output'))
        return self.returncode

    def stderr_text(self):
        return self._stderr.text() if self._stderr else ''

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class ProcessSink:
    """Run ``argv`` and feed it a stream on stdin (restore side)."""

    def __init__(self, argv, env=None, ok_codes=(0,), cwd=None, label=None):
        self.argv = list(argv)
        self.label = label or os.path.basename(self.argv[0])
        self.ok_codes = tuple(ok_codes)
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         env=env, cwd=cwd, close_fds=True)
        except OSError as exc:
            raise ProducerError('cannot run %s: %s' % (self.label, exc))
        self._out = _StderrTail(self.proc.stdout)
        self._out.start()
        self._broken = False

    def write(self, data):
        if self._broken:
            return
        try:
            self.proc.stdin.write(data)
        except (BrokenPipeError, ValueError):
            self._broken = True

    def close(self):
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        code = self.proc.wait()
        if code not in self.ok_codes or self._broken:
            raise ProducerError('%s exited with status %s: %s' % (self.label, code, self._out.text() or 'no output'))
        return self._out.text()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class _HashingSink:
    def __init__(self, writer):
        self.writer = writer
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data):
        if data:
            self.sha.update(data)
            self.size += len(data)
            self.writer.write(data)


def compress_stream(chunks, writer, level=3, threads=0, cancel=None):
    """Compress an iterable of byte chunks into ``writer``.

    Returns ``size`` (uncompressed stream) and ``compressed_size`` / ``sha256`` (the stored object,
    what verification re-reads). The uncompressed content is covered by the zstd frame checksum,
    which every decompression checks, so it is not hashed a second time on the hot path.
    The writer is not completed or aborted here; the caller owns it.
    """
    if not HAS_ZSTD:
        raise ProducerError(missing_library_msg('zstandard'))
    raw_size = 0
    sink = _HashingSink(writer)
    cctx = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
    cobj = cctx.compressobj()
    for chunk in chunks:
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        raw_size += len(chunk)
        sink.write(cobj.compress(chunk))
    sink.write(cobj.flush())
    return {'size': raw_size, 'compressed_size': sink.size, 'sha256': sink.sha.hexdigest()}


def hash_stream(chunks):
    sha = hashlib.sha256()
    size = 0
    for chunk in chunks:
        sha.update(chunk)
        size += len(chunk)
    return sha.hexdigest(), size


class _IterReader:
    """File-like view of a chunk iterator that hashes what it hands out."""

    def __init__(self, chunks):
        self._it = iter(chunks)
        self._buf = b''
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n=-1):
        while (n < 0 or len(self._buf) < n):
            try:
                chunk = next(self._it)
            except StopIteration:
                break
            self.sha.update(chunk)
            self.size += len(chunk)
            self._buf += chunk
        if n < 0:
            data, self._buf = self._buf, b''
        else:
            data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def drain(self):
        while self.read(CHUNK):
            pass


def decompress_stream(chunks, sink_write):
    """Decompress stored chunks into ``sink_write`` with bounded memory.

    Returns (stored sha256, stored size, raw size); the hash covers every stored byte.
    """
    if not HAS_ZSTD:
        raise ProducerError(missing_library_msg('zstandard'))
    source = _IterReader(chunks)
    reader = zstandard.ZstdDecompressor().stream_reader(source, read_size=CHUNK)
    raw = 0
    try:
        while True:
            out = reader.read(CHUNK)
            if not out:
                break
            raw += len(out)
            sink_write(out)
    except zstandard.ZstdError as exc:
        raise ProducerError('stored object is not a valid zstd stream: %s' % exc)
    source.drain()
    return source.sha.hexdigest(), source.size, raw
