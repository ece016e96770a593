# -*- coding: utf-8 -*-
"""The shared input checks: finite, bounded numbers and real IP networks, each error naming the option."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.mcp.platform.plugins.module_utils import validation
from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError
from ansible_collections.mcp.platform.plugins.module_utils.s3 import check_s3_params


@pytest.mark.parametrize("value, kwargs, words", [
    ("nan", {}, "ttl must be a finite number"),
    (float("inf"), {}, "ttl must be a finite number"),
    ("x", {}, "ttl must be a number"),
    (None, {}, "ttl must be a number"),
    (True, {}, "ttl must be a finite number"),
    (-1, {"minimum": 0}, "ttl must be >= 0"),
    (11, {"maximum": 10}, "ttl must be <= 10"),
    (1.5, {"integer": True}, "ttl must be a whole number"),
])
def test_number_refuses_naming_the_option(value, kwargs, words):
    with pytest.raises(validation.ValidationError) as err:
        validation.number("ttl", value, **kwargs)
    assert words in str(err.value)
    assert isinstance(err.value, PlatformError)


def test_number_accepts_and_converts():
    assert validation.number("n", "2.5") == 2.5
    assert validation.number("n", "3", integer=True, minimum=1, maximum=3) == 3


@pytest.mark.parametrize("value", [0, -5, 1000000000000, "inf"])
def test_seconds_positive_and_at_most_ten_years(value):
    with pytest.raises(validation.ValidationError) as err:
        validation.seconds("ttl", value)
    assert str(err.value).startswith("ttl must be")


@pytest.mark.parametrize("value", ["10.0.0.0/8", "192.168.1.7", "::1", "fd00::/64", "0.0.0.0/0"])
def test_cidr_accepts_addresses_and_networks(value):
    assert validation.cidr("bypass_sources", value) == value


@pytest.mark.parametrize("value", ["999.1.1.1", "10.0.0.0/33", "::1/129", "10.0.0.0/", "10.0.0.0/08", "abc",
                                   "10.0.0.1\n", "", "fe80::1/64/1", None])
def test_cidr_refuses_bogus_networks(value):
    with pytest.raises(validation.ValidationError) as err:
        validation.cidr("bypass_sources", value)
    assert "bypass_sources: %r is not an IP address or CIDR" % (value,) == str(err.value)


@pytest.mark.parametrize("params, words", [
    ({"s3_endpoint_url": "http://"}, "s3_endpoint_url must be http(s)://host"),
    ({"s3_endpoint_url": "ftp://s3.example.com"}, "s3_endpoint_url must be"),
    ({"s3_endpoint_url": "http://s3.example.com:99999"}, "s3_endpoint_url must be"),
    ({"s3_region": "eu west 1"}, "s3_region 'eu west 1' is not a region name"),
    ({"s3_region": "-bad"}, "s3_region"),
    ({"s3_retries": 0}, "s3_retries must be >= 1"),
    ({"s3_retries": 1000}, "s3_retries must be <= 20"),
])
def test_s3_params_refused(params, words):
    with pytest.raises(validation.ValidationError) as err:
        check_s3_params(params)
    assert words in str(err.value)


def test_s3_params_accepted():
    check_s3_params({"s3_endpoint_url": "https://s3.eu-west-1.amazonaws.com", "s3_region": "eu-west-1", "s3_retries": 5})
    check_s3_params({"s3_endpoint_url": "http://127.0.0.1:9000/base", "s3_region": None, "s3_retries": None})
