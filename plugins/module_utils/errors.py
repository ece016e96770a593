# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one root of the errors this collection's module_utils raise (PRIVATE to the collection).

Every concern keeps its own exception class (``BackupError``, ``HAError``, ``RolloutError`` ...) so a caller
can catch the one it expects; all of them derive from ``PlatformError``, whose message is already masked and
safe to hand to ``fail_json``. A module that catches ``PlatformError`` has caught every failure we anticipated;
anything else is a bug and should surface as one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class PlatformError(Exception):
    """A failure the collection anticipated, with a message that is safe to show (already masked)."""
