# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The managed node's own probes: disk (used space of a file system) and memory (/proc/meminfo).

They read the local system only, need no library, and share the warn/crit percentage thresholds.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.mcp.platform.plugins.module_utils.health.checks import result


def _threshold(value, warn, crit):
    if value >= crit:
        return "crit", "crit_percent %g" % crit
    if value >= warn:
        return "warn", "warn_percent %g" % warn
    return "ok", None


def probe_disk(check):
    path = check["path"]
    try:
        st = os.statvfs(path)
    except OSError as exc:
        return result("crit", "disk %s: %s" % (path, exc.strerror or exc), path=path)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    pct = round(100.0 * used / (used + avail), 2) if used + avail else 0.0
    inodes_pct = round(100.0 * (st.f_files - st.f_ffree) / st.f_files, 2) if st.f_files else None
    details = {"path": path, "used_percent": pct, "used_bytes": used, "available_bytes": avail,
               "total_bytes": st.f_blocks * st.f_frsize, "inodes_used_percent": inodes_pct}
    status, limit = _threshold(pct, check["warn_percent"], check["crit_percent"])
    text = "disk %s: %.1f%% used, %.1f GiB free" % (path, pct, avail / 1073741824.0)
    return result(status, "%s >= %s" % (text, limit) if limit else text, **details)


def read_meminfo(path="/proc/meminfo"):
    """The numeric fields of /proc/meminfo, in bytes (the file counts in kB)."""
    values = {}
    with open(path) as handle:
        for line in handle:
            key, _sep, rest = line.partition(":")
            fields = rest.split()
            if fields and fields[0].isdigit():
                values[key.strip()] = int(fields[0]) * 1024
    return values


def probe_memory(check):
    try:
        mem = read_meminfo()
    except (OSError, IOError) as exc:
        return result("unknown", "memory: cannot read /proc/meminfo (%s); only Linux is supported" % (
            exc.strerror or exc))
    total = mem.get("MemTotal")
    if not total:
        return result("unknown", "memory: /proc/meminfo has no MemTotal")
    avail = mem.get("MemAvailable")
    if avail is None:  # kernels before 3.14
        avail = mem.get("MemFree", 0) + mem.get("Buffers", 0) + mem.get("Cached", 0)
    pct = round(100.0 * (total - avail) / total, 2)
    details = {"used_percent": pct, "total_bytes": total, "available_bytes": avail,
               "swap_total_bytes": mem.get("SwapTotal"), "swap_free_bytes": mem.get("SwapFree")}
    status, limit = _threshold(pct, check["warn_percent"], check["crit_percent"])
    text = "memory: %.1f%% used, %.1f GiB available" % (pct, avail / 1073741824.0)
    return result(status, "%s >= %s" % (text, limit) if limit else text, **details)
