# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The message for a Python library a module needs on the managed node and does not find there.

The modules run on the managed nodes, under the interpreter the inventory names. Managed nodes hold
only what the collection installs: the mcp.platform.node role puts every library the modules import
into one venv. So "library missing" almost always means one of two things, and the message says both:
the inventory does not point ``ansible_python_interpreter`` at that venv, or the library is an
optional one the role installs only when ``node_python_packages_extra`` lists it.

Plain Python (no AnsibleModule): modules call ``missing_library_msg`` for ``fail_json``; module_utils
raise their own errors with it; health probes use ``not_installed_reason`` for a one-line check reason.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import sys

from ansible.module_utils.basic import missing_required_lib

NODE_ROLE = "mcp.platform.node"
NODE_VENV = "/opt/mcp-platform/venv"
NODE_PYTHON = NODE_VENV + "/bin/python"

# Import name -> (pip package, installed by the node role by default). The ranges themselves live in
# roles/node/defaults/main.yml (node_python_packages); this table only names the packages.
PACKAGES = {
    "boto3": ("boto3", True),
    "docker": ("docker", True),
    "psycopg2": ("psycopg2-binary", True),
    "requests": ("requests", True),
    "zstandard": ("zstandard", True),
    "kubernetes": ("kubernetes", False),
    "psycopg": ("psycopg[binary]", False),
    "pymongo": ("pymongo", False),
}


def pip_package(library):
    """The pip package that provides the importable ``library`` (``psycopg2`` -> ``psycopg2-binary``)."""
    return PACKAGES.get(library, (library, False))[0]


def node_role_hint(library):
    """The sentence naming the role that installs ``library`` and the interpreter to run the module with."""
    package, by_default = PACKAGES.get(library, (library, False))
    where = "into %s" % NODE_VENV
    if not by_default:
        where += " when it is listed in node_python_packages_extra"
    return "The %s role installs %s %s; run this module with ansible_python_interpreter=%s." % (
        NODE_ROLE, package, where, NODE_PYTHON)


def missing_library_msg(library, reason=None):
    """``missing_required_lib`` for the pip package of ``library``, followed by ``node_role_hint``.

    ``reason`` completes "This is required ..." (for example ``"for target=s3"``).
    """
    text = missing_required_lib(pip_package(library), reason=reason).rstrip()
    if not text.endswith("."):
        text += "."
    return "%s %s" % (text, node_role_hint(library))


def not_installed_reason(library, what=None):
    """One line for a result that cannot be had without ``library`` (a health check's ``reason``).

    ``what`` replaces the default "<library> is not installed" (for example when either of two drivers
    would do); the interpreter and the role hint follow.
    """
    what = what or "%s is not installed" % library
    return "%s on the managed node (Python %s). %s" % (what, sys.executable, node_role_hint(library))


__all__ = ["NODE_PYTHON", "NODE_ROLE", "NODE_VENV", "PACKAGES", "missing_library_msg", "node_role_hint",
           "not_installed_reason", "pip_package"]
