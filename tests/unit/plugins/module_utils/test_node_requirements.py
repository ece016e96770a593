"""node_requirements: a missing library is reported with its pip package and the role that installs it."""
import sys

import pytest

from ansible_collections.mcp.platform.plugins.module_utils import node_requirements as nr
from ansible_collections.mcp.platform.plugins.module_utils import postgres as pg
from ansible_collections.mcp.platform.plugins.module_utils.health import checks
from ansible_collections.mcp.platform.plugins.module_utils.health.probes import PROBES

ROLE = "mcp.platform.node"
VENV_PYTHON = "/opt/mcp-platform/venv/bin/python"


@pytest.mark.parametrize("library, package", [
    ("boto3", "boto3"),
    ("zstandard", "zstandard"),
    ("psycopg2", "psycopg2-binary"),
    ("docker", "docker"),
    ("requests", "requests"),
    ("pymongo", "pymongo"),
    ("kubernetes", "kubernetes"),
])
def test_message_names_the_pip_package_the_role_and_the_interpreter(library, package):
    msg = nr.missing_library_msg(library)
    assert msg.startswith("Failed to import the required Python library (%s) on " % package)
    assert sys.executable in msg
    assert "The %s role installs %s into /opt/mcp-platform/venv" % (ROLE, package) in msg
    assert msg.endswith("run this module with ansible_python_interpreter=%s." % VENV_PYTHON)


def test_message_keeps_the_reason_and_reads_as_sentences():
    msg = nr.missing_library_msg("boto3", reason="for target=s3")
    assert "This is required for target=s3." in msg
    # missing_required_lib's text ends without a full stop; the role sentence must not run into it
    assert "ansible_python_interpreter. The mcp.platform.node role" in msg
    assert ".." not in msg


def test_default_packages_are_installed_unconditionally_optional_ones_need_the_extra_list():
    assert "node_python_packages_extra" not in nr.missing_library_msg("psycopg2")
    hint = nr.missing_library_msg("pymongo")
    assert "installs pymongo into /opt/mcp-platform/venv when it is listed in node_python_packages_extra" in hint


def test_a_library_outside_the_table_is_named_as_imported():
    assert nr.pip_package("somelib") == "somelib"
    msg = nr.missing_library_msg("somelib")
    assert "(somelib)" in msg and ROLE in msg and "node_python_packages_extra" in msg


def test_reason_is_one_line_naming_the_library_the_package_and_the_role():
    reason = nr.not_installed_reason("psycopg2", "neither psycopg2 nor psycopg is installed")
    assert "\n" not in reason
    assert reason.startswith("neither psycopg2 nor psycopg is installed on the managed node (Python %s)." % sys.executable)
    assert "%s role installs psycopg2-binary" % ROLE in reason
    assert VENV_PYTHON in reason


@pytest.mark.parametrize("ctype, library, check, package", [
    ("postgres", "psycopg2", {"dsn": "host=127.0.0.1 port=1 dbname=postgres user=u password=s3cret"}, "psycopg2-binary"),
    ("mongodb", "pymongo", {"uri": "mongodb://u:s3cret@127.0.0.1:1/"}, "pymongo"),
    ("container", "docker", {"service": "git"}, "docker"),
    ("logs", "docker", {}, "docker"),
])
def test_health_check_without_its_library_is_unknown_naming_package_and_role(monkeypatch, ctype, library, check, package):
    if library == "psycopg2":  # postgres.py found neither psycopg2 nor psycopg
        for name, value in (("psycopg2", None), ("psycopg", None), ("DRIVER", None), ("HAS_DRIVER", False),
                            ("DRIVER_ERRORS", ())):
            monkeypatch.setattr(pg, name, value)
    else:
        monkeypatch.setitem(checks._LIBS, library, None)
    [valid] = checks.validate_checks([dict(name="c", type=ctype, **check)], default_timeout=1)
    res = PROBES[ctype](valid)
    assert res["status"] == "unknown"
    assert "%s role installs %s" % (ROLE, package) in res["reason"]
    assert VENV_PYTHON in res["reason"]
    assert "s3cret" not in res["reason"]
