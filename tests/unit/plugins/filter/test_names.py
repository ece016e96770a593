# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mcp.platform.plugins.filter.names import names


@pytest.mark.parametrize("value,expected", [
    ("git", ["git"]),                                   # -e services=git (was split into letters)
    ("git,filesystem", ["git", "filesystem"]),
    (" git , filesystem ,", ["git", "filesystem"]),
    ("git\nfilesystem\n", ["git", "filesystem"]),       # older AWX multiselect answers: one choice per line
    (["git", " filesystem"], ["git", "filesystem"]),    # a YAML list, a current AWX multiselect answer
    (["git", "git"], ["git"]),
    ("", []),
    (None, []),
    ([], []),
])
def test_names(value, expected):
    assert names(value) == expected


@pytest.mark.parametrize("value", [{"a": 1}, [{"name": "git"}], [True], 3.5])
def test_not_names(value):
    with pytest.raises(AnsibleFilterError, match="names: expected"):
        names(value)
