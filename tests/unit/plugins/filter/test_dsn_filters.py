"""repoint_dsn and masked: the failover's DATABASE_URL surgery and masking, as filters."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mcp.platform.plugins.filter.masked import masked
from ansible_collections.mcp.platform.plugins.filter.repoint_dsn import repoint_dsn


def test_repoint_and_mask_a_database_url():
    new = repoint_dsn("postgresql://mcp:s3cret@10.231.0.21:5432/mcp_production", "10.231.0.22:5432")
    assert new == "postgresql://mcp:s3cret@10.231.0.22:5432/mcp_production"
    assert masked(new) == "postgresql://mcp:********@10.231.0.22:5432/mcp_production"
    assert masked("host=h password='x y' user=u") == "host=h password=******** user=u"
    assert masked(None) == "" and masked("token abc", ["abc"]) == "token ********"


def test_bad_input_names_the_filter():
    with pytest.raises(AnsibleFilterError, match="repoint_dsn: expected a DATABASE_URL"):
        repoint_dsn("", "h:1")
    with pytest.raises(AnsibleFilterError, match="hostport must be host:port"):
        repoint_dsn("postgresql://h/db", "nohostport")
