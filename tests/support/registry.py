# -*- coding: utf-8 -*-
"""A Docker Distribution registry (Debian's ``docker-registry``) in a subprocess, and pushes to it through its HTTP
API v2 (a config blob and a manifest per image: what ``podman push`` uploads, minus the layers the tests do not
need). The fixture is ``registry`` in tests/component/conftest.py."""
from __future__ import absolute_import, division, print_function

import hashlib
import json
import os
import shutil
import subprocess
import urllib.request

import pytest

from support.ports import free_port
from support.waiting import wait_port

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"
IMAGE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
IMAGE_INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"


def start_registry(root):
    """(Popen, base URL) of a registry storing under ``root`` on a free loopback port."""
    if not os.path.exists(REGISTRY):
        pytest.skip("no docker-registry binary (Debian package docker-registry; make lab-up installs it)")
    port = free_port()
    config = os.path.join(root, "config.yml")
    with open(config, "w") as fh:
        fh.write("version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: '127.0.0.1:%d'}\n"
                 % (os.path.join(root, "data"), port))
    proc = subprocess.Popen([REGISTRY, "serve", config], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_port(port, 30.0, proc, what="docker-registry")
    return proc, "http://127.0.0.1:%d" % port


def _request(url, method, data=None, ctype=None):
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": ctype} if ctype else {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.headers.get("Location"), resp.headers.get("Docker-Content-Digest")


def _blob(base, repo, body):
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    location = _request("%s/v2/%s/blobs/uploads/" % (base, repo), "POST")[0]
    if location.startswith("/"):
        location = base + location
    _request("%s%sdigest=%s" % (location, "&" if "?" in location else "?", digest), "PUT", body, "application/octet-stream")
    return digest, len(body)


def _manifest(base, repo, ref, doc, ctype):
    body = json.dumps(doc).encode()
    _request("%s/v2/%s/manifests/%s" % (base, repo, ref), "PUT", body, ctype)
    return "sha256:" + hashlib.sha256(body).hexdigest(), len(body)


def _image(base, repo, ref, labels, arch):
    """Push one image manifest (no layers) whose configuration carries ``labels``: (its digest, size, config digest)."""
    config = json.dumps({"architecture": arch, "os": "linux", "config": {"Labels": labels},
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    digest, size = _blob(base, repo, config)
    mdigest, msize = _manifest(base, repo, ref, {"schemaVersion": 2, "mediaType": IMAGE_MANIFEST, "layers": [],
                                                 "config": {"mediaType": CONFIG, "digest": digest, "size": size}}, IMAGE_MANIFEST)
    return mdigest, msize, digest


def push_image(base, repo, tag, labels, index=False):
    """Push ``repo:tag`` whose configuration carries ``labels``; ``index`` wraps it in a multi-platform OCI index
    (an arm64 image without the labels first, then the linux/amd64 one). The labelled image's config digest."""
    if not index:
        return _image(base, repo, tag, labels, "amd64")[2]
    entries = []
    for arch, image_labels in (("arm64", {}), ("amd64", labels)):
        mdigest, msize, digest = _image(base, repo, "%s-%s" % (tag, arch), image_labels, arch)
        entries.append({"mediaType": IMAGE_MANIFEST, "digest": mdigest, "size": msize,
                        "platform": {"os": "linux", "architecture": arch}})
    _manifest(base, repo, tag, {"schemaVersion": 2, "mediaType": IMAGE_INDEX, "manifests": entries}, IMAGE_INDEX)
    return digest


def stop(proc):
    proc.terminate()
    proc.wait(timeout=10)
