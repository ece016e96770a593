# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the rollout asks the gateway (Traefik's API) and tells a replica (its drain endpoint), over HTTP."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
from urllib.error import HTTPError, URLError

from ansible.module_utils.urls import open_url


def gateway_servers(admin_url, service, timeout=5.0, provider="docker"):
    """``serverStatus`` of the gateway's ``<service>@<provider>`` (URL -> UP/DOWN); {} when it has none."""
    url = "%s/api/http/services/%s@%s" % (admin_url.rstrip("/"), service, provider)
    try:
        with open_url(url, headers={"Accept": "application/json"}, timeout=timeout) as resp:
            return json.loads(resp.read().decode("utf-8") or "{}").get("serverStatus") or {}
    except HTTPError as exc:
        if exc.code == 404:
            return {}
        raise


def gateway_router(admin_url, router, timeout=5.0):
    """The gateway's router ``router`` (``name@provider``) as its API shows it; None when it has none."""
    url = "%s/api/http/routers/%s" % (admin_url.rstrip("/"), router)
    try:
        with open_url(url, headers={"Accept": "application/json"}, timeout=timeout) as resp:
            return json.loads(resp.read().decode("utf-8") or "{}")
    except HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def post(url, timeout=5.0):
    """POST ``url`` with an empty body; the status code, or None when nothing answered."""
    try:
        with open_url(url, data=b"", method="POST", timeout=timeout) as resp:
            return resp.getcode()
    except HTTPError as exc:
        return exc.code
    except (URLError, OSError, ValueError):
        return None
