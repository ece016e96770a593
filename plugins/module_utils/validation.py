# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Input checks every module shares (PRIVATE to the collection).

Patterns that validate a whole value end in ``\\Z``, not ``$`` (which also matches before a trailing
newline, so ``"git\\n"`` passed as a service name, a label or a set id). Why not ``float(x) < 0``: ``nan``
compares false with everything and ``inf`` overflows ``datetime``, so ``retention: {daily: nan}`` pruned
nearly every set and ``ttl: 1e12`` raised a traceback. Each helper raises ``ValidationError`` naming the option, for ``fail_json``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import socket

try:
    from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError
except ImportError:  # loaded by path by the maintenance responder, which has only the standard library
    PlatformError = Exception

# Ten years: longer than any window, lock or retention anyone means, and far inside what datetime accepts.
MAX_SECONDS = 10 * 366 * 86400


class ValidationError(PlatformError):
    """An option's value is refused; the message names the option."""


def number(option, value, minimum=None, maximum=None, integer=False):
    """``value`` as a finite number within [minimum, maximum]; ``option`` names it in the error."""
    try:
        num = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValidationError("%s must be a number, got %r" % (option, value))
    if isinstance(value, bool) or math.isnan(num) or math.isinf(num):
        raise ValidationError("%s must be a finite number, got %r" % (option, value))
    if integer and num != int(num):
        raise ValidationError("%s must be a whole number, got %r" % (option, value))
    if minimum is not None and num < minimum:
        raise ValidationError("%s must be >= %s, got %r" % (option, minimum, value))
    if maximum is not None and num > maximum:
        raise ValidationError("%s must be <= %s, got %r" % (option, maximum, value))
    return int(num) if integer else num


def seconds(option, value, maximum=MAX_SECONDS):
    """A positive, finite duration in seconds no longer than ``maximum`` (ten years by default)."""
    num = number(option, value, maximum=maximum)
    if num <= 0:
        raise ValidationError("%s must be a positive number of seconds, got %r" % (option, value))
    return num


def _address(text):
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, text)
            return 32 if family == socket.AF_INET else 128
        except (OSError, ValueError):
            continue
    return None


def cidr(option, value):
    """``value`` if it is an IPv4/IPv6 address or network (``10.0.0.0/8``, ``::1``), else ValidationError.

    As strict as the gateway's parser (Go's ``net.ParseCIDR``): no netmask form, no leading zeros in the prefix,
    which ``ipaddress.ip_network`` would accept and Traefik would then reject at reload.
    """
    text = value if isinstance(value, str) else ""
    addr, _sep, prefix = text.partition("/")
    bits = _address(addr)
    ok = bits is not None and (not _sep or (prefix.isdigit() and int(prefix) <= bits and prefix == str(int(prefix))))
    if not ok or text != text.strip():
        raise ValidationError("%s: %r is not an IP address or CIDR" % (option, value))
    return value
