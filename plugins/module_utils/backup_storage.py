# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup targets: a local directory or an S3-compatible bucket.

Both targets expose the same small interface used by the backup engine:

* ``open_writer(key)`` returns a streaming writer (``write``/``complete``/``abort``).
  S3 uses a multipart upload with at most ``max_in_flight`` parts of ``part_size``
  bytes in memory, so memory is bounded whatever the object size. The local
  target writes ``<key>.partial-<random>`` (mode 0600) and renames it on
  completion, so a half-written object is never visible under its final name.
* ``iter_object(key)`` streams an object back in chunks.
* ``put_bytes`` / ``get_bytes`` for the small JSON documents (manifest, verification record).
* ``list_objects()`` / ``delete(keys)``.
* ``list_incomplete()`` / ``abort_incomplete(item)``: unfinished multipart uploads
  (S3) or ``.partial-*`` files (local) left by a crashed run.

Keys are always relative to the target prefix (``<set_id>/<component>.<ext>.zst``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError
from ansible_collections.mcp.platform.plugins.module_utils.node_requirements import missing_library_msg

try:
    import boto3
    from botocore.config import Config as BotoConfig
    from botocore.exceptions import BotoCoreError, ClientError
    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the module
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = exc

    class BotoCoreError(Exception):
        pass

    class ClientError(Exception):
        pass

MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB
PARTIAL_MARK = '.partial-'


class StorageError(PlatformError):
    """A target operation failed; the message never contains credentials."""


def _s3_error(op, where, exc):
    if isinstance(exc, ClientError):
        err = getattr(exc, 'response', {}).get('Error', {})
        detail = '%s: %s' % (err.get('Code', 'error'), err.get('Message', '') or '')
    else:
        detail = '%s: %s' % (type(exc).__name__, exc)
    hint = ''
    code = str(getattr(exc, 'response', {}).get('Error', {}).get('Code', ''))
    if code in ('403', 'AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'Forbidden'):
        hint = ' (check s3_access_key / s3_secret_key and the bucket policy)'
    elif code in ('404', 'NoSuchBucket'):
        hint = ' (check s3_bucket)'
    return StorageError('S3 %s on %s failed: %s%s' % (op, where, detail.strip().rstrip(':'), hint))


class LocalWriter:
    def __init__(self, final_path):
        self.final_path = final_path
        self.tmp_path = '%s%s%s' % (final_path, PARTIAL_MARK, uuid.uuid4().hex[:8])
        os.makedirs(os.path.dirname(final_path), mode=0o700, exist_ok=True)
        fd = os.open(self.tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._fh = os.fdopen(fd, 'wb')
        self.closed = False

    def write(self, data):
        self._fh.write(data)
        return len(data)

    def complete(self):
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.chmod(self.tmp_path, 0o600)
        os.rename(self.tmp_path, self.final_path)
        self.closed = True

    def abort(self):
        if self.closed:
            return
        self.closed = True
        try:
            self._fh.close()
        finally:
            if os.path.exists(self.tmp_path):
                os.unlink(self.tmp_path)


class LocalTarget:
    """A directory on a local (or mounted) filesystem; objects are 0600 files."""

    kind = 'local'

    def __init__(self, path):
        if not path:
            raise StorageError('local_path is required when target=local')
        self.root = os.path.abspath(path)

    def describe(self):
        return 'file://%s' % self.root

    def _path(self, key):
        key = key.lstrip('/')
        if '..' in key.split('/'):
            raise StorageError('invalid key %r' % key)
        return os.path.join(self.root, key)

    def check(self):
        try:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StorageError('cannot create local target %s: %s' % (self.root, exc))

    def open_writer(self, key):
        try:
            return LocalWriter(self._path(key))
        except OSError as exc:
            raise StorageError('cannot write %s: %s' % (self._path(key), exc))

    def put_bytes(self, key, data):
        writer = self.open_writer(key)
        try:
            writer.write(data)
            writer.complete()
        except BaseException:
            writer.abort()
            raise

    def get_bytes(self, key):
        try:
            with open(self._path(key), 'rb') as fh:
                return fh.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError('cannot read %s: %s' % (self._path(key), exc))

    def iter_object(self, key, chunk_size=MIB):
        try:
            with open(self._path(key), 'rb') as fh:
                while True:
                    chunk = fh.read(chunk_size)
                    if not chunk:
                        return
                    yield chunk
        except OSError as exc:
            raise StorageError('cannot read %s: %s' % (self._path(key), exc))

    def _walk(self):
        if not os.path.isdir(self.root):
            return
        for dirpath, dummy, filenames in os.walk(self.root):
            for name in filenames:
                full = os.path.join(dirpath, name)
                try:
                    st = os.stat(full)
                except OSError:
                    continue
                yield os.path.relpath(full, self.root).replace(os.sep, '/'), st

    def list_objects(self):
        return [{'key': key, 'size': st.st_size, 'mtime': st.st_mtime}
                for key, st in self._walk() if PARTIAL_MARK not in key]

    def list_incomplete(self):
        return [{'key': key, 'id': key, 'initiated': st.st_mtime, 'size': st.st_size}
                for key, st in self._walk() if PARTIAL_MARK in key]

    def abort_incomplete(self, item):
        try:
            os.unlink(self._path(item['id']))
        except FileNotFoundError:
            pass

    def delete(self, keys):
        for key in keys:
            path = self._path(key)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StorageError('cannot delete %s: %s' % (path, exc))
        # drop empty set directories
        for key in keys:
            directory = os.path.dirname(self._path(key))
            while directory.startswith(self.root + os.sep):
                try:
                    os.rmdir(directory)
                except OSError:
                    break
                directory = os.path.dirname(directory)


class S3Writer:
    """Multipart upload with bounded memory: one part filling per writer, ``max_in_flight`` parts in flight per target.

    The in-flight budget is the target's, shared by every component uploading at once, so the module's memory does
    not grow with the number of components (nor with the dataset): about ``part_size * (max_in_flight + 2 * writers)``.
    """

    def __init__(self, target, key):
        self.target = target
        self.key = key
        self.full_key = target.full_key(key)
        self.part_size = target.part_size
        self._buf = bytearray()
        self._parts = []
        self._futures = []
        self._sem = target.in_flight
        self._pool = ThreadPoolExecutor(max_workers=target.max_in_flight)
        self._error = None
        self.closed = False
        try:
            resp = target.client.create_multipart_upload(**target.put_args(self.full_key))
        except (ClientError, BotoCoreError) as exc:
            self._pool.shutdown(wait=False)
            raise _s3_error('CreateMultipartUpload', target.where(key), exc)
        self.upload_id = resp['UploadId']

    def _upload(self, number, data):
        try:
            resp = self.target.client.upload_part(Bucket=self.target.bucket, Key=self.full_key, UploadId=self.upload_id,
                                                  PartNumber=number, Body=data)
            return {'PartNumber': number, 'ETag': resp['ETag']}
        except (ClientError, BotoCoreError) as exc:
            self._error = _s3_error('UploadPart', self.target.where(self.key), exc)
            raise self._error
        finally:
            self._sem.release()

    def _flush_part(self, data):
        if self._error:
            raise self._error
        self._sem.acquire()
        number = len(self._futures) + 1
        self._futures.append(self._pool.submit(self._upload, number, data))

    def write(self, data):
        self._buf += data
        while len(self._buf) >= self.part_size:
            # one copy per part (bytes, what botocore sends); the view is released before the buffer shrinks
            with memoryview(self._buf) as view:
                part = bytes(view[:self.part_size])
            del self._buf[:self.part_size]
            self._flush_part(part)
        return len(data)

    def complete(self):
        if self._buf or not self._futures:
            self._flush_part(bytes(self._buf))
            self._buf = bytearray()
        parts = []
        for fut in self._futures:
            parts.append(fut.result())
        self._pool.shutdown(wait=True)
        try:
            self.target.client.complete_multipart_upload(Bucket=self.target.bucket, Key=self.full_key, UploadId=self.upload_id,
                                                         MultipartUpload={'Parts': parts})
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error('CompleteMultipartUpload', self.target.where(self.key), exc)
        self.closed = True

    def abort(self):
        if self.closed:
            return
        self.closed = True
        for fut in self._futures:
            if fut.cancel():
                self._sem.release()  # the part never ran, so its _upload never gives the shared permit back
        self._pool.shutdown(wait=True)
        try:
            self.target.client.abort_multipart_upload(Bucket=self.target.bucket, Key=self.full_key, UploadId=self.upload_id)
        except (ClientError, BotoCoreError):
            pass  # left for `state: pruned` (abort_incomplete_after)


class S3Target:
    """An S3-compatible bucket (AWS, MinIO, Ceph, moto) under an optional prefix."""

    kind = 's3'

    def __init__(self, bucket, prefix='', endpoint_url=None, access_key=None, secret_key=None, region=None,
                 session_token=None, server_side_encryption='AES256', part_size=16 * MIB, max_in_flight=4, retries=5,
                 connect_timeout=10, read_timeout=60):
        if not HAS_BOTO3:
            raise StorageError(missing_library_msg('boto3', reason='for target=s3'))
        if not bucket:
            raise StorageError('s3_bucket is required when target=s3')
        self.bucket = bucket
        self.prefix = (prefix or '').strip('/')
        self.endpoint_url = endpoint_url
        self.sse = server_side_encryption or None
        self.part_size = max(int(part_size), MIN_PART_SIZE)
        self.max_in_flight = max(int(max_in_flight), 1)
        self.in_flight = threading.Semaphore(self.max_in_flight)
        # Checksums: every stored byte is SHA-256 hashed here and re-read by verify, so botocore's own CRC32 of each
        # part (and its check of each download) only doubles the CPU spent per byte on the hot path.
        config = BotoConfig(retries={'max_attempts': retries, 'mode': 'standard'}, connect_timeout=connect_timeout,
                            read_timeout=read_timeout, max_pool_connections=max(10, self.max_in_flight * 4),
                            s3={'addressing_style': 'path'} if endpoint_url else {},
                            request_checksum_calculation='when_required', response_checksum_validation='when_required')
        session = boto3.session.Session(aws_access_key_id=access_key or None, aws_secret_access_key=secret_key or None,
                                        aws_session_token=session_token or None, region_name=region or 'us-east-1')
        self.client = session.client('s3', endpoint_url=endpoint_url or None, config=config)

    def describe(self):
        return 's3://%s/%s' % (self.bucket, self.prefix)

    def full_key(self, key):
        return '%s/%s' % (self.prefix, key) if self.prefix else key

    def rel_key(self, full_key):
        if self.prefix:
            return full_key[len(self.prefix) + 1:]
        return full_key

    def where(self, key):
        return 's3://%s/%s' % (self.bucket, self.full_key(key))

    def put_args(self, full_key):
        args = {'Bucket': self.bucket, 'Key': full_key}
        if self.sse:
            args['ServerSideEncryption'] = self.sse
        return args

    def check(self):
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error('HeadBucket', 's3://%s' % self.bucket, exc)

    def open_writer(self, key):
        return S3Writer(self, key)

    def put_bytes(self, key, data):
        args = self.put_args(self.full_key(key))
        try:
            self.client.put_object(Body=data, **args)
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error('PutObject', self.where(key), exc)

    def get_bytes(self, key):
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.full_key(key))['Body'].read()
        except ClientError as exc:
            if exc.response.get('Error', {}).get('Code') in ('NoSuchKey', '404', 'NotFound'):
                return None
            raise _s3_error('GetObject', self.where(key), exc)
        except BotoCoreError as exc:
            raise _s3_error('GetObject', self.where(key), exc)

    def iter_object(self, key, chunk_size=MIB):
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.full_key(key))['Body']
            yield from body.iter_chunks(chunk_size)
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error('GetObject', self.where(key), exc)

    def _paginate(self, method, result_key, **kwargs):
        paginator = self.client.get_paginator(method)
        prefix = self.prefix + '/' if self.prefix else ''
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, **kwargs):
                yield from page.get(result_key, []) or []
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error(method, 's3://%s/%s' % (self.bucket, prefix), exc)

    def list_objects(self):
        return [{'key': self.rel_key(obj['Key']), 'size': obj['Size'], 'mtime': obj['LastModified'].timestamp()}
                for obj in self._paginate('list_objects_v2', 'Contents')]

    def list_incomplete(self):
        return [{'key': self.rel_key(up['Key']), 'id': up['UploadId'], 'initiated': up['Initiated'].timestamp()}
                for up in self._paginate('list_multipart_uploads', 'Uploads')]

    def abort_incomplete(self, item):
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.full_key(item['key']), UploadId=item['id'])
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error('AbortMultipartUpload', self.where(item['key']), exc)

    def delete(self, keys):
        keys = list(keys)
        for start in range(0, len(keys), 1000):
            batch = [{'Key': self.full_key(k)} for k in keys[start:start + 1000]]
            try:
                resp = self.client.delete_objects(Bucket=self.bucket, Delete={'Objects': batch, 'Quiet': True})
            except (ClientError, BotoCoreError) as exc:
                raise _s3_error('DeleteObjects', 's3://%s/%s' % (self.bucket, self.prefix), exc)
            errors = resp.get('Errors') or []
            if errors:
                raise StorageError('S3 DeleteObjects failed for %d key(s), first %s: %s'
                                   % (len(errors), errors[0].get('Key'), errors[0].get('Message')))


def make_target(params):
    """Build a target from module-style parameters (``target``, ``s3_*``, ``local_path``)."""
    kind = params.get('target') or 's3'
    if kind == 'local':
        return LocalTarget(params.get('local_path'))
    if kind != 's3':
        raise StorageError('target must be one of s3, local; got %r' % kind)
    sse = params.get('s3_server_side_encryption', 'AES256')
    return S3Target(bucket=params.get('s3_bucket'), prefix=params.get('s3_prefix') or '',
                    endpoint_url=params.get('s3_endpoint_url'), access_key=params.get('s3_access_key'),
                    secret_key=params.get('s3_secret_key'), region=params.get('s3_region'),
                    session_token=params.get('s3_session_token'),
                    server_side_encryption=None if sse in (None, '', 'none') else sse,
                    part_size=int(params.get('part_size_mb') or 16) * MIB,
                    max_in_flight=params.get('max_in_flight') or 4,
                    retries=params.get('s3_retries') or 5)


def now():
    return time.time()
