# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secret masking shared by every module (PRIVATE to the collection).

``no_log`` protects option values, but passwords also travel inside DSNs, URLs, headers and the error text a
driver returns (libpq quotes the connection string back). Every message and result a module returns passes
through ``mask_text``/``mask_value`` with the secrets it knows of, so nothing reaches the output at any verbosity.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from urllib.parse import unquote

MASK = "********"

_URL_PASSWORD = re.compile(r"(?P<pre>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*:)(?P<pw>[^/?#\s]*)(?P<post>@)")
_QUERY_PASSWORD = re.compile(r"(?P<pre>[?&](?:password|pass|pwd)=)(?P<pw>[^&#\s]*)", re.I)
_KV_PASSWORD = re.compile(r"(?P<pre>(?:^|(?<=\s))password\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.I)
SENSITIVE_HEADER = re.compile(r"authorization|cookie|token|secret|api[-_]?key|password", re.I)


def mask_text(text, secrets=()):
    """Return ``text`` with DSN/URL passwords and every string in ``secrets`` replaced by ``********``."""
    if text is None:
        return text
    if not isinstance(text, str):
        text = str(text)
    if not text:
        return text
    for secret in sorted((str(s) for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: m.group("pre") + (MASK if m.group("pw") else "") + m.group("post"), text)
    text = _QUERY_PASSWORD.sub(lambda m: m.group("pre") + MASK, text)
    return _KV_PASSWORD.sub(lambda m: m.group("pre") + MASK, text)


def mask_value(value, secrets=()):
    """``mask_text`` applied recursively to the strings in dicts/lists (other values unchanged)."""
    if isinstance(value, str):
        return mask_text(value, secrets)
    if isinstance(value, dict):
        return dict((k, mask_value(v, secrets)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [mask_value(v, secrets) for v in value]
    return value


def embedded_secrets(text):
    """Passwords embedded in a DSN/URI/URL (raw, unquoted and percent-decoded forms)."""
    found = set()
    if not text:
        return found
    for rx in (_URL_PASSWORD, _QUERY_PASSWORD, _KV_PASSWORD):
        for m in rx.finditer(text):
            pw = m.group("pw")
            if pw.startswith("'") and pw.endswith("'") and len(pw) >= 2:
                found.add(pw[1:-1])
            found.add(pw)
            found.add(unquote(pw))
    return set(s for s in found if s)


def header_secrets(headers):
    """Values of the headers whose names say they carry a credential (Authorization, Cookie, X-Api-Key ...)."""
    return set(str(v) for k, v in (headers or {}).items() if v and SENSITIVE_HEADER.search(str(k)))


def fail_masked(module, msg, **kwargs):
    """``module.fail_json`` with the passwords in ``msg`` masked. Ansible masks the module's no_log values itself, but not
    a password inside a URL option (``tcp://user:password@``, an S3 endpoint with userinfo) that an error repeats."""
    module.fail_json(msg=mask_text(msg), **kwargs)
