# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mcp_health's checks and probes, one file per concern (PRIVATE to the collection).

``checks`` is the check vocabulary and its validation; ``network``, ``datastores``, ``containers`` and
``system`` hold the probes of one family of check types each; ``probes`` maps a check type to its probe.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type
