# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The platform contract in Python: container labels, image names and the container-engine client (PRIVATE).

Every module that finds, starts or reads MCP containers uses these names, so "a platform container" means the
same thing to the health check, the logs reader and the replacement engine. The engine client honours the
variables the docker CLI and community.docker honour (``DOCKER_HOST``, ``DOCKER_TLS_VERIFY``,
``DOCKER_CERT_PATH``), through ``docker_argument_spec``'s fallbacks.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.module_utils.basic import env_fallback

from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError
from ansible_collections.mcp.platform.plugins.module_utils.node_requirements import missing_library_msg

LABEL_PREFIX = "io.mcp-platform."
MANAGED_LABEL = LABEL_PREFIX + "managed"
HOST_LABEL = LABEL_PREFIX + "host"
SERVICE_LABEL = LABEL_PREFIX + "service"
VERSION_LABEL = LABEL_PREFIX + "version"
REPLICA_LABEL = LABEL_PREFIX + "replica"
# A digest of the container's definition (image, environment, labels, ports, volumes): a replica whose digest differs
# from the wanted one (a repointed DATABASE_URL) is replaced. It reveals nothing `docker inspect` does not show.
SPEC_LABEL = LABEL_PREFIX + "spec"

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
# The oldest API both Docker Engine 20.10+ and Podman's compatible service speak: pinning it spares a
# version-negotiation round trip per client, and podman 4.x rejects some newer versions.
DOCKER_API_VERSION = "1.41"


class EngineError(PlatformError):
    """The container engine could not be reached or refused a call."""


def managed_selector(host=None, service=None, extra=None):
    """The label filters of the platform's containers (optionally one host's, one service's)."""
    labels = ["%s=true" % MANAGED_LABEL]
    if host:
        labels.append("%s=%s" % (HOST_LABEL, host))
    if service:
        labels.append("%s=%s" % (SERVICE_LABEL, service))
    labels += ["%s=%s" % kv for kv in sorted((extra or {}).items())]
    return labels


def image_ref(registry, service, version):
    """``<registry>/mcp-platform/<service>:<version>``, the contract's image name."""
    return "%s/mcp-platform/%s:%s" % (registry.rstrip("/"), service, version)


def docker_argument_spec():
    """The engine connection options (doc fragment ``docker``), with the docker CLI's environment fallbacks."""
    return dict(
        docker_host=dict(type="str", fallback=(env_fallback, ["DOCKER_HOST"])),
        docker_tls_verify=dict(type="bool", fallback=(env_fallback, ["DOCKER_TLS_VERIFY"])),
        docker_cert_path=dict(type="path", fallback=(env_fallback, ["DOCKER_CERT_PATH"])),
        docker_timeout=dict(type="int", default=60),
    )


def docker_client(docker_host=None, tls_verify=False, cert_path=None, timeout=60, low_level=False):
    """A ``docker.DockerClient`` (or its ``APIClient`` with ``low_level``) for the engine at ``docker_host``.

    ``docker_host`` None means the default socket. TLS uses ``cert_path``'s ca.pem/cert.pem/key.pem (the
    layout ``DOCKER_CERT_PATH`` names). Raises EngineError (never the SDK's traceback) when the SDK is missing.
    """
    try:
        import docker  # pylint: disable=import-outside-toplevel
        import docker.tls  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise EngineError(missing_library_msg("docker"))
    kwargs = {"base_url": docker_host or DEFAULT_DOCKER_HOST, "version": DOCKER_API_VERSION,
              "timeout": max(1, int(timeout))}
    if tls_verify or cert_path:
        path = cert_path or os.path.expanduser("~/.docker")
        kwargs["tls"] = docker.tls.TLSConfig(
            client_cert=(os.path.join(path, "cert.pem"), os.path.join(path, "key.pem")),
            ca_cert=os.path.join(path, "ca.pem") if tls_verify else None, verify=bool(tls_verify))
        if kwargs["base_url"].startswith("tcp://"):
            kwargs["base_url"] = "https://" + kwargs["base_url"][len("tcp://"):]
    try:
        return docker.APIClient(**kwargs) if low_level else docker.DockerClient(**kwargs)
    except docker.errors.DockerException as exc:
        raise EngineError("docker_host %s: cannot reach the engine: %s" % (kwargs["base_url"], exc))


def docker_client_from_params(params, low_level=False, timeout=None):
    """``docker_client`` from a module's ``docker_argument_spec`` parameters."""
    return docker_client(params.get("docker_host"), params.get("docker_tls_verify"), params.get("docker_cert_path"),
                         timeout or params.get("docker_timeout") or 60, low_level=low_level)
