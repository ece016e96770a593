# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""platform.env parsed once, for every role that needs VERSION or DATABASE_URL."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mcp.platform.plugins.filter.platform_env import FilterModule, platform_env

TEXT = "# written by mcp.platform.deploy\nVERSION=1.1.0\n\nexport DATABASE_URL='postgresql://mcp:p=w@10.0.0.5:5432/db'\nbad line\n1X=no\n"


def test_text_and_slurp_result_give_the_same_variables():
    want = {"VERSION": "1.1.0", "DATABASE_URL": "postgresql://mcp:p=w@10.0.0.5:5432/db"}
    assert platform_env(TEXT) == want
    assert platform_env({"content": base64.b64encode(TEXT.encode()).decode(), "encoding": "base64"}) == want


def test_a_missing_file_is_an_empty_dict_so_default_applies():
    assert platform_env({"failed": True, "msg": "file not found"}) == {}
    assert platform_env(None) == {}


def test_bad_input_names_the_filter():
    with pytest.raises(AnsibleFilterError, match="platform_env"):
        platform_env(42)
    with pytest.raises(AnsibleFilterError, match="not base64"):
        platform_env({"content": "!!!"})


def test_registered():
    assert FilterModule().filters()["platform_env"] is platform_env
