# -*- coding: utf-8 -*-
"""health.checks: the check vocabulary, validation, secret collection. mcp_health's header logging (against a
local HTTP server) is in tests/component."""
from __future__ import absolute_import, division, print_function

import pytest

from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError
from ansible_collections.mcp.platform.plugins.module_utils.health import checks
from ansible_collections.mcp.platform.plugins.module_utils.health.checks import (
    CheckValidationError,
    check_secrets,
    validate_check,
    validate_checks,
)
from ansible_collections.mcp.platform.plugins.module_utils.secrets import embedded_secrets, mask_text, mask_value


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
def test_validate_fills_type_defaults():
    http = validate_check({"name": "a", "type": "http", "url": "http://x/health"}, 0)
    assert http["status_code"] == [200] and http["validate_certs"] is True and http["timeout"] == 5.0
    disk = validate_check({"name": "d", "type": "disk", "path": "/"}, 0, default_timeout=2)
    assert (disk["warn_percent"], disk["crit_percent"], disk["timeout"]) == (80.0, 90.0, 2.0)
    mem = validate_check({"name": "m", "type": "MEMORY"}, 0)
    assert (mem["type"], mem["warn_percent"], mem["crit_percent"]) == ("memory", 75.0, 85.0)
    tls = validate_check({"name": "t", "type": "tls", "host": "h"}, 0)
    assert (tls["port"], tls["warn_days"], tls["crit_days"], tls["validate_certs"]) == (443, 30.0, 7.0, False)
    mcp = validate_check({"name": "m", "type": "mcp", "url": "https://h/mcp/fs/mcp", "min_tools": "2", "timeout": 3}, 0)
    assert mcp["protocol_version"] == "2025-06-18" and mcp["min_tools"] == 2 and mcp["delete_session"] is True


def test_validate_treats_none_as_unset():
    """AnsibleModule fills every suboption with None; that must not trip the per-type key check."""
    spec_keys = dict((k, None) for k in checks.check_suboptions())
    spec_keys.update(name="x", type="tcp", host="h", port=80)
    out = validate_check(spec_keys, 4)
    assert out["port"] == 80 and "path" not in out


@pytest.mark.parametrize("check,option,text", [
    ({"name": "a", "type": "ftp"}, "checks[2].type", "unknown check type 'ftp'"),
    ({"type": "http", "url": "http://x"}, "checks[2].name", "is required"),
    ({"name": "a", "type": "http"}, "checks[2].url", "is required for a check of type http"),
    ({"name": "a", "type": "http", "url": "ftp://x/"}, "checks[2].url", "must be a http:// or https:// URL"),
    ({"name": "a", "type": "http", "url": "http://"}, "checks[2].url", "with a host"),
    ({"name": "a", "type": "http", "url": "http://h:99999/"}, "checks[2].url", "malformed URL"),
    ({"name": "a", "type": "http", "url": "http://h/", "status_code": [200, 700]}, "checks[2].status_code[1]", "between 100 and 599"),
    ({"name": "a", "type": "http", "url": "http://h/", "body_regex": "("}, "checks[2].body_regex", "invalid regular expression"),
    ({"name": "a", "type": "http", "url": "http://h/", "path": "/"}, "checks[2].path", "not valid for a check of type http"),
    ({"name": "a", "type": "http", "url": "http://h/", "bogus": 1}, "checks[2].bogus", "unknown option"),
    ({"name": "a", "type": "tcp", "host": "h", "port": 0}, "checks[2].port", "between 1 and 65535"),
    ({"name": "a", "type": "tcp", "host": "h", "port": "http"}, "checks[2].port", "must be a number"),
    ({"name": "a", "type": "tcp", "host": "h"}, "checks[2].port", "is required"),
    ({"name": "a", "type": "tls", "host": "h", "warn_days": 5, "crit_days": 10}, "checks[2].warn_days", "must be >= crit_days"),
    ({"name": "a", "type": "disk", "path": "/", "warn_percent": 101}, "checks[2].warn_percent", "between 0 and 100"),
    ({"name": "a", "type": "disk", "path": "/", "crit_percent": -1}, "checks[2].crit_percent", "between 0 and 100"),
    ({"name": "a", "type": "memory", "warn_percent": 90, "crit_percent": 80}, "checks[2].warn_percent", "must be <= crit_percent"),
    ({"name": "a", "type": "postgres", "dsn": "mysql://u:p@h/db"}, "checks[2].dsn", "postgresql:// URI"),
    ({"name": "a", "type": "postgres", "dsn": "justahost"}, "checks[2].dsn", "key=value"),
    ({"name": "a", "type": "postgres", "dsn": "host=h", "expect_role": "leader"}, "checks[2].expect_role", "primary, replica"),
    ({"name": "a", "type": "redis", "url": "http://h:6379"}, "checks[2].url", "redis://"),
    ({"name": "a", "type": "mongodb", "uri": "postgres://h"}, "checks[2].uri", "mongodb://"),
    ({"name": "a", "type": "container", "service": "fs", "docker_host": "/var/run/docker.sock"}, "checks[2].docker_host", "unix://"),
    ({"name": "a", "type": "container"}, "checks[2].service", "is required"),
    ({"name": "a", "type": "container", "service": "fs", "min_replicas": 1.5}, "checks[2].min_replicas", "must be an integer"),
    ({"name": "a", "type": "memory", "timeout": 0}, "checks[2].timeout", "between"),
    ({"name": "a", "type": "http", "url": "http://h/", "headers": "x"}, "checks[2].headers", "dictionary"),
    ({"name": "a", "type": "http", "url": "http://h/", "validate_certs": "maybe"}, "checks[2].validate_certs", "boolean"),
])
def test_validate_errors_name_the_option(check, option, text):
    with pytest.raises(CheckValidationError) as err:
        validate_check(check, 2)
    assert err.value.option == option
    assert str(err.value).startswith(option + ": ")
    assert text in str(err.value)
    assert isinstance(err.value, ValueError) and isinstance(err.value, PlatformError)


def test_validate_error_does_not_echo_secrets():
    with pytest.raises(CheckValidationError) as err:
        validate_check({"name": "a", "type": "mongodb", "uri": "mysql://root:hunter2@db/x"}, 0)
    assert "hunter2" not in str(err.value)
    with pytest.raises(CheckValidationError) as err:
        validate_check({"name": "a", "type": "redis", "url": "http://:hunter2@h/"}, 0)
    assert "hunter2" not in str(err.value) and "********" in str(err.value)


def test_validate_checks_duplicate_names_and_type():
    with pytest.raises(CheckValidationError) as err:
        validate_checks([{"name": "a", "type": "memory"}, {"name": "a", "type": "memory"}])
    assert err.value.option == "checks[1].name" and "duplicate" in str(err.value)
    with pytest.raises(CheckValidationError):
        validate_checks({"name": "a"})
    with pytest.raises(CheckValidationError) as err:
        validate_checks(["memory"])
    assert err.value.option == "checks[0]"


def test_suboptions_cover_every_field():
    spec = checks.check_suboptions()
    assert set(spec) == set(checks.FIELD_KINDS)
    for fields in checks.TYPE_FIELDS.values():
        assert set(fields) <= set(spec)
    assert all(spec[k]["no_log"] for k in ("dsn", "uri", "password"))
    assert spec["type"]["choices"] == list(checks.CHECK_TYPES)


@pytest.mark.parametrize("check,option", [
    ({"type": "container", "service": "s", "probe_path": "health"}, "checks[0].probe_path"),
    ({"type": "container", "service": "s", "probe_port": 70000}, "checks[0].probe_port"),
    ({"type": "logs", "since": 0}, "checks[0].since"),
    ({"type": "logs", "warn_errors": 5, "crit_errors": 2}, "checks[0].warn_errors"),
    ({"type": "logs", "docker_host": "/var/run/docker.sock"}, "checks[0].docker_host"),
])
def test_container_probe_and_logs_validation(check, option):
    with pytest.raises(CheckValidationError) as err:
        validate_check(dict(check, name="x"), 0)
    assert err.value.option == option


# --------------------------------------------------------------------------------------------
# masking
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw,masked", [
    ("postgresql://mcp:s3cr%40t@db1:5432/mcp_production", "postgresql://mcp:********@db1:5432/mcp_production"),
    ("postgresql://mcp:p@ss@host/db", "postgresql://mcp:********@host/db"),
    ("postgresql://mcp@host/db", "postgresql://mcp@host/db"),
    ("postgresql://host/db?user=mcp&password=pw1&sslmode=require", "postgresql://host/db?user=mcp&password=********&sslmode=require"),
    ("host=db1 user=mcp password=pw2 dbname=x", "host=db1 user=mcp password=******** dbname=x"),
    ("host=db1 password = 'a b\\'c' dbname=x", "host=db1 password = ******** dbname=x"),
    ("mongodb://u:pw3@h1:27017,h2:27017/mcp?replicaSet=rs0", "mongodb://u:********@h1:27017,h2:27017/mcp?replicaSet=rs0"),
    ("redis://:pw4@cache:6379/0", "redis://:********@cache:6379/0"),
    ("error connecting to postgresql://a:b@c/d: refused", "error connecting to postgresql://a:********@c/d: refused"),
])
def test_mask_text(raw, masked):
    assert mask_text(raw) == masked


def test_mask_known_secrets_and_nested():
    secrets = check_secrets({"password": "topsecret", "dsn": "postgresql://u:p%40w@h/d",
                             "headers": {"Authorization": "Bearer tok123", "Accept": "text/plain"}})
    assert {"topsecret", "p%40w", "p@w", "Bearer tok123"} <= secrets and "text/plain" not in secrets
    value = {"a": ["auth failed for topsecret", {"b": "Bearer tok123 p@w"}], "n": 3}
    assert mask_value(value, secrets) == {"a": ["auth failed for ********", {"b": "******** ********"}], "n": 3}


def test_embedded_secrets_without_password():
    assert embedded_secrets("host=h user=u dbname=d") == set()
    assert embedded_secrets("postgresql://u@h/d") == set()
