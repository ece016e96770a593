"""module_defaults values: unset settings dropped so the modules' own defaults and env fallbacks apply."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mcp.platform.plugins.filter.module_defaults import module_defaults


def test_unset_entries_are_dropped_and_falsy_settings_kept():
    assert module_defaults({"s3_bucket": "b", "s3_access_key": "", "s3_secret_key": None, "s3_retries": 0,
                            "drain": False}) == {"s3_bucket": "b", "s3_retries": 0, "drain": False}


def test_not_a_dict_names_the_filter():
    with pytest.raises(AnsibleFilterError, match="module_defaults: expected a dict"):
        module_defaults(["s3_bucket"])
