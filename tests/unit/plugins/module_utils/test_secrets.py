"""Masking shared by every module: DSNs, URLs, headers, and the literal secrets a module knows of."""

from ansible_collections.mcp.platform.plugins.module_utils import secrets


def test_url_query_and_keyword_passwords_are_masked():
    text = ("postgresql://app:s3cr%40t@db:5432/mcp?sslmode=require "
            "host=db password='a b\\'c' user=x https://h/p?token=1&password=hunter2")
    out = secrets.mask_text(text)
    for leaked in ("s3cr%40t", "a b", "hunter2"):
        assert leaked not in out
    assert out.count(secrets.MASK) == 3
    assert "user=x" in out and "sslmode=require" in out


def test_literal_secrets_longest_first_and_recursively():
    value = {"msg": ["token abcdef and abc"], "n": 3}
    assert secrets.mask_value(value, ["abc", "abcdef"]) == {"msg": ["token ******** and ********"], "n": 3}
    assert secrets.mask_text(None) is None
    assert secrets.mask_text(42, ["4"]) == "********2"


def test_embedded_secrets_include_decoded_and_unquoted_forms():
    found = secrets.embedded_secrets("postgresql://u:p%40ss@h/db password='q w'")
    assert {"p%40ss", "p@ss", "q w"} <= found


def test_header_secrets_by_name():
    assert secrets.header_secrets({"Authorization": "Bearer x", "X-Api-Key": "k", "Accept": "json"}) == {"Bearer x", "k"}
