"""The S3 vocabulary: AWS environment fallbacks (an AWX credential), explicit options winning, keys masked."""

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.mcp.platform.plugins.module_utils.s3 import s3_argument_spec

AWS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION",
       "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


def _validate(params, environ, monkeypatch):
    for key in AWS:
        monkeypatch.delenv(key, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    return ArgumentSpecValidator(s3_argument_spec()).validate(params)


def test_the_awx_credential_environment_fills_the_options_and_is_masked(monkeypatch):
    res = _validate({}, {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI",
                         "AWS_SESSION_TOKEN": "FwoGZXIvYXdz", "AWS_DEFAULT_REGION": "eu-west-3",
                         "AWS_ENDPOINT_URL": "http://minio:9000"}, monkeypatch)
    p = res.validated_parameters
    assert (p["s3_access_key"], p["s3_secret_key"], p["s3_session_token"]) == ("AKIAEXAMPLE", "wJalrXUtnFEMI", "FwoGZXIvYXdz")
    assert (p["s3_region"], p["s3_endpoint_url"]) == ("eu-west-3", "http://minio:9000")
    assert {"wJalrXUtnFEMI", "FwoGZXIvYXdz"} <= res._no_log_values
    assert "AKIAEXAMPLE" not in res._no_log_values  # an access key id is an identifier, shown like community.aws does


def test_explicit_options_win_and_the_region_defaults(monkeypatch):
    res = _validate({"s3_access_key": "mine", "s3_endpoint_url": "https://s3.example.com"},
                    {"AWS_ACCESS_KEY_ID": "env", "AWS_ENDPOINT_URL_S3": "http://s3-specific", "AWS_ENDPOINT_URL": "x"},
                    monkeypatch)
    p = res.validated_parameters
    assert (p["s3_access_key"], p["s3_endpoint_url"], p["s3_region"]) == ("mine", "https://s3.example.com", "us-east-1")
    p = _validate({}, {"AWS_ENDPOINT_URL_S3": "http://s3-specific", "AWS_ENDPOINT_URL": "http://generic"},
                  monkeypatch).validated_parameters
    assert p["s3_endpoint_url"] == "http://s3-specific"
