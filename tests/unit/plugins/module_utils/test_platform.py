"""The platform contract in Python: labels, image names, the engine connection vocabulary."""

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.mcp.platform.plugins.module_utils import platform
from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError


def test_selector_of_one_hosts_service_with_extra_labels():
    assert platform.managed_selector("mcp-1", "git", {"b": "2", "a": "1"}) == [
        "io.mcp-platform.managed=true", "io.mcp-platform.host=mcp-1", "io.mcp-platform.service=git", "a=1", "b=2"]
    assert platform.managed_selector() == ["io.mcp-platform.managed=true"]


def test_image_ref_is_the_contract_name():
    assert platform.image_ref("registry.example.com:5000/", "git", "1.2.0") == \
        "registry.example.com:5000/mcp-platform/git:1.2.0"


def _validate(params, environ, monkeypatch):
    for key in ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        monkeypatch.delenv(key, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    result = ArgumentSpecValidator(platform.docker_argument_spec()).validate(params)
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


def test_docker_options_fall_back_to_the_docker_cli_environment(monkeypatch):
    p = _validate({}, {"DOCKER_HOST": "tcp://engine:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/certs"},
                  monkeypatch)
    assert (p["docker_host"], p["docker_tls_verify"], p["docker_cert_path"]) == ("tcp://engine:2376", True, "/certs")


def test_an_explicit_docker_host_wins_over_the_environment(monkeypatch):
    p = _validate({"docker_host": "unix:///run/podman/podman.sock"}, {"DOCKER_HOST": "tcp://elsewhere:2375"},
                  monkeypatch)
    assert p["docker_host"] == "unix:///run/podman/podman.sock"
    assert _validate({}, {}, monkeypatch)["docker_host"] is None


def test_engine_error_is_a_platform_error_with_the_address(tmp_path):
    """A socket that does not exist: the client is lazy, so the first call fails, naming nothing secret."""
    client = platform.docker_client("unix://%s/none.sock" % tmp_path, timeout=2, low_level=True)
    with pytest.raises(Exception) as exc:
        client.version()
    assert "none.sock" in str(exc.value) or "No such file" in str(exc.value)
    assert issubclass(platform.EngineError, PlatformError)


def test_tls_settings_switch_the_scheme_to_https(tmp_path):
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    client = platform.docker_client("tcp://engine.example.com:2376", tls_verify=True, cert_path=str(tmp_path),
                                    low_level=True)
    assert client.base_url == "https://engine.example.com:2376"
    assert client.verify == str(tmp_path / "ca.pem")
