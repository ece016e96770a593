# -*- coding: utf-8 -*-
"""The registry's answers read as a release: which API base, which image of an index, which breaking changes.
The module against the lab's real registry is tests/component/plugins/modules/test_mcp_release_info.py."""
from __future__ import absolute_import, division, print_function

import pytest

from ansible_collections.mcp.platform.plugins.module_utils.registry import RegistryError, breaking_from_labels, breaking_from_notes, pick_manifest, registry_api


@pytest.mark.parametrize("registry,url,api", [
    ("registry.example.com", "", "https://registry.example.com"),
    ("registry.example.com:5000/team", "", "https://registry.example.com:5000"),
    ("127.0.0.1:25000", "", "http://127.0.0.1:25000"),
    ("localhost:5000", "", "http://localhost:5000"),
    ("[::1]:5000", "", "http://[::1]:5000"),
    ("10.1.0.1:25000", "http://10.1.0.1:25000/", "http://10.1.0.1:25000"),
])
def test_registry_api_is_https_unless_loopback_or_given(registry, url, api):
    assert registry_api(registry, url) == api


def test_an_index_resolves_to_its_linux_amd64_image_then_any_linux_then_the_first():
    arm = {"digest": "sha256:arm", "platform": {"os": "linux", "architecture": "arm64"}}
    amd = {"digest": "sha256:amd", "platform": {"os": "linux", "architecture": "amd64"}}
    win = {"digest": "sha256:win", "platform": {"os": "windows", "architecture": "amd64"}}
    assert pick_manifest({"manifests": [win, arm, amd]}) == "sha256:amd"
    assert pick_manifest({"manifests": [win, arm]}) == "sha256:arm"
    assert pick_manifest({"manifests": [win]}) == "sha256:win"
    assert pick_manifest({"manifests": []}) is None


def test_breaking_changes_from_the_label_blank_is_none():
    assert breaking_from_labels("git", {"io.mcp-platform.breaking-changes": "  drops /v0  "}) == ["git: drops /v0"]
    assert breaking_from_labels("git", {"io.mcp-platform.breaking-changes": " "}) == []
    assert breaking_from_labels("git", None) == []


@pytest.mark.parametrize("notes,expected", [
    ({"2.0.0": {"breaking_changes": ["a", " b "]}}, ["release notes: a", "release notes: b"]),
    ({"2.0.0": ["a"]}, ["release notes: a"]),
    ({"2.0.0": "a"}, ["release notes: a"]),
    ({"2.0.0": {"breaking_changes": []}, "1.0.0": ["x"]}, []),
    ({"1.9.0": ["x"]}, []),
    (None, []),
])
def test_breaking_changes_from_the_release_notes(notes, expected):
    assert breaking_from_notes(notes, "2.0.0") == expected


def test_release_notes_keyed_by_a_yaml_float_version_still_match():
    # "2.0": [...] unquoted in YAML is the float 2.0
    assert breaking_from_notes({2.0: ["a"]}, "2.0") == ["release notes: a"]


@pytest.mark.parametrize("notes", [["2.0.0"], {"2.0.0": {"breaking_changes": {"a": 1}}}])
def test_release_notes_of_the_wrong_shape_are_refused_by_name(notes):
    with pytest.raises(RegistryError, match="release notes"):
        breaking_from_notes(notes, "2.0.0")
