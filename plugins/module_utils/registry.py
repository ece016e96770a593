# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a release is in the registry: does every image of a version exist, and what breaking changes it declares.

The update's pre-flight asks this before anything changes. It speaks the registry's HTTP API v2 (Docker
Distribution, Harbor, Zot, GHCR ...) directly: a manifest and one config blob per image are two GETs, where the
Docker SDK would need an engine on the controller and ``docker_image_info`` only sees images already pulled.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
from urllib.error import HTTPError, URLError

from ansible.module_utils.urls import open_url

from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError

BREAKING_LABEL = "io.mcp-platform.breaking-changes"
IMAGE_MANIFESTS = ("application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json")
INDEX_MANIFESTS = ("application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.oci.image.index.v1+json")


class RegistryError(PlatformError):
    """The registry did not answer, or answered something that is not a registry's answer."""


def registry_api(registry, registry_url=""):
    """The API base: ``registry_url`` when given, else http:// for a loopback registry and https:// otherwise."""
    if registry_url:
        return registry_url.rstrip("/")
    host = registry.split("/")[0]
    loopback = host.startswith("127.") or host.split(":")[0] == "localhost" or host.startswith("[::1]")
    return ("http://" if loopback else "https://") + host


def pick_manifest(index, arch="amd64"):
    """The digest of an image index's linux/<arch> entry (else its first linux one, else its first); None if empty."""
    entries = index.get("manifests") or []
    for wanted in (lambda p: p.get("os") == "linux" and p.get("architecture") == arch, lambda p: p.get("os") == "linux",
                   lambda p: True):
        for entry in entries:
            if wanted(entry.get("platform") or {}):
                return entry.get("digest")
    return None


def breaking_from_labels(service, labels):
    """``["<service>: <text>"]`` from the image's breaking-changes label; [] when the label is absent or blank."""
    text = ((labels or {}).get(BREAKING_LABEL) or "").strip()
    return ["%s: %s" % (service, text)] if text else []


def breaking_from_notes(notes, version):
    """The release-notes file's breaking changes of ``version``, each prefixed ``release notes: ``.

    The file maps a version to ``{"breaking_changes": [...]}`` or directly to a list of strings.
    """
    if not notes:
        return []
    if not isinstance(notes, dict):
        raise RegistryError("release notes must map versions to breaking changes, got a %s" % type(notes).__name__)
    entry = notes.get(version)
    if entry is None:
        entry = {str(k): v for k, v in notes.items()}.get(str(version))
    if isinstance(entry, dict):
        entry = entry.get("breaking_changes")
    if not entry:
        return []
    if isinstance(entry, str):
        entry = [entry]
    if not isinstance(entry, list):
        raise RegistryError("release notes of %s: breaking_changes must be a list of strings" % version)
    return ["release notes: %s" % str(item).strip() for item in entry if str(item).strip()]


def _absent(status):
    return {"status": status, "present": False, "digest": None, "labels": {}}


class Registry(object):
    """GETs against one registry's API v2 (anonymous: the lab's and most internal registries need no token)."""

    def __init__(self, api, validate_certs=True, timeout=10.0):
        self.api = api.rstrip("/")
        self.validate_certs = validate_certs
        self.timeout = timeout

    def _get(self, path, accept=None):
        """(status, content type, parsed JSON body or None); 4xx are answers, not errors."""
        url = "%s/v2/%s" % (self.api, path)
        headers = {"Accept": accept} if accept else {}
        try:
            with open_url(url, headers=headers, validate_certs=self.validate_certs, timeout=self.timeout) as resp:
                body = resp.read()
                ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
                status = resp.getcode()
        except HTTPError as exc:
            if 400 <= exc.code < 500:
                return exc.code, "", None
            raise RegistryError("registry %s answered HTTP %d to GET %s" % (self.api, exc.code, url))
        except (URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RegistryError("registry %s is unreachable (GET %s): %s" % (self.api, url, reason))
        try:
            return status, ctype, json.loads(body.decode("utf-8"))
        except ValueError:
            raise RegistryError("registry %s answered GET %s with something that is not JSON" % (self.api, url))

    def image(self, repository, tag):
        """``{status, present, digest, labels}`` of ``repository:tag``; an index resolves to its linux image."""
        accept = ", ".join(IMAGE_MANIFESTS + INDEX_MANIFESTS)
        status, ctype, manifest = self._get("%s/manifests/%s" % (repository, tag), accept)
        if status == 200 and (ctype in INDEX_MANIFESTS or (manifest or {}).get("manifests") is not None):
            digest = pick_manifest(manifest)
            if digest is None:  # an empty index: nothing to run
                return _absent(status)
            status, ctype, manifest = self._get("%s/manifests/%s" % (repository, digest), ", ".join(IMAGE_MANIFESTS))
        if status != 200:
            return _absent(status)
        config = ((manifest or {}).get("config") or {}).get("digest")
        labels = {}
        if config:
            status, _ctype, blob = self._get("%s/blobs/%s" % (repository, config))
            if status == 200 and isinstance(blob, dict):
                labels = (blob.get("config") or {}).get("Labels") or {}
        return {"status": 200, "present": True, "digest": config, "labels": labels}


def release_info(registry, namespace, services, version, extra_repositories=(), notes=None, host=""):
    """Every image of ``version`` for ``services`` (plus ``extra_repositories``, e.g. migrations), the references
    (``host/namespace/name:version``) not in the registry, and the breaking changes the images' labels and the
    release notes declare."""
    images, missing, breaking = [], [], []
    for name in list(services) + list(extra_repositories):
        repository = "%s/%s" % (namespace, name) if namespace else name
        found = registry.image(repository, version)
        reference = "%s%s:%s" % (host.rstrip("/") + "/" if host else "", repository, version)
        images.append(dict(found, name=name, reference=reference, service=name in services))
        if not found["present"]:
            missing.append(reference)
        elif name in services:
            breaking.extend(breaking_from_labels(name, found["labels"]))
    breaking.extend(breaking_from_notes(notes, version))
    return {"images": images, "missing": missing, "breaking_changes": breaking}
