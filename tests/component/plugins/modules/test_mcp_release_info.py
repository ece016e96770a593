# -*- coding: utf-8 -*-
"""mcp_release_info end to end: the real ``ansible`` CLI runs the module (``run_module_result``) against a real
registry of this file's own (``registry``: Debian's docker-registry, filled through its HTTP API v2 by
support.registry.push_image). The label and release-notes parsing is in tests/unit/plugins/module_utils/test_registry.py."""
from __future__ import absolute_import, division, print_function

from support.ports import free_port
from support.registry import push_image

BREAKING = {"io.mcp-platform.breaking-changes": "drops the legacy /v0 API", "io.mcp-platform.version": "2.0.0"}


def _args(registry, **kw):
    args = {"registry": registry.split("://", 1)[1], "registry_url": registry, "namespace": "mcp-platform",
            "services": ["filesystem", "git"], "version": "2.0.0"}
    args.update(kw)
    return args


def test_a_complete_release_is_found_with_its_breaking_changes_and_nothing_changes(run_module_result, registry, tmp_path):
    push_image(registry, "mcp-platform/filesystem", "2.0.0", {"io.mcp-platform.version": "2.0.0"})
    git_config = push_image(registry, "mcp-platform/git", "2.0.0", BREAKING, index=True)
    push_image(registry, "mcp-platform/migrations", "2.0.0", {"io.mcp-platform.breaking-changes": "not a service: not read"})
    notes = tmp_path / "notes.yml"
    notes.write_text('"2.0.0":\n  breaking_changes: ["DATABASE_URL must name sslmode"]\n"1.0.0": ["older"]\n')
    args = _args(registry, extra_images=["migrations"], release_notes_file=str(notes))
    for extra in ((), ("--check",)):  # read-only: the same answer, never changed, in check mode too
        proc, result = run_module_result("mcp_release_info", args, *extra)
        assert proc.returncode == 0 and result["changed"] is False, proc.stdout + proc.stderr
        assert result["missing"] == [] and result["missing_status"] == []
        assert [(i["name"], i["present"], i["service"]) for i in result["images"]] == [
            ("filesystem", True, True), ("git", True, True), ("migrations", True, False)]
        git = result["images"][1]
        # the index resolved to its linux/amd64 image, whose configuration carries the labels
        assert git["digest"] == git_config and git["labels"] == BREAKING
        assert result["breaking_changes"] == ["git: drops the legacy /v0 API", "release notes: DATABASE_URL must name sslmode"]
        assert result["registry_url"] == registry


def test_missing_images_are_named_with_the_registry_and_status(run_module_result, registry):
    push_image(registry, "mcp-platform/filesystem", "2.1.0", {})
    proc, result = run_module_result("mcp_release_info", _args(registry, version="2.1.0", extra_images=["migrations"]))
    assert proc.returncode == 0 and result["changed"] is False, proc.stdout + proc.stderr
    host = registry.split("://", 1)[1]
    assert result["missing"] == ["%s/mcp-platform/git:2.1.0" % host, "%s/mcp-platform/migrations:2.1.0" % host]
    assert result["missing_status"] == [404]
    assert [i["present"] for i in result["images"]] == [True, False, False]


def test_an_unreachable_registry_fails_naming_it_without_a_traceback(run_module_result):
    url = "http://127.0.0.1:%d" % free_port()
    proc, result = run_module_result("mcp_release_info", _args(url, timeout=3))
    assert proc.returncode != 0 and result["failed"], proc.stdout + proc.stderr
    assert result["msg"].startswith("registry %s is unreachable (GET %s/v2/mcp-platform/filesystem/manifests/2.0.0)" % (url, url))
    assert "Traceback" not in proc.stdout + proc.stderr


def test_bad_input_fails_naming_the_option(run_module_result, registry, tmp_path):
    bad_yaml = tmp_path / "notes.yml"
    bad_yaml.write_text('"2.0.0": [unclosed\n')
    wrong_shape = tmp_path / "list.yml"
    wrong_shape.write_text("- 2.0.0\n")
    for args, msg in [
        (_args(registry, release_notes_file=str(tmp_path / "absent.yml")), "release_notes_file %s does not exist" % (tmp_path / "absent.yml")),
        (_args(registry, release_notes_file=str(bad_yaml)), "release_notes_file %s cannot be read as YAML" % bad_yaml),
        (_args(registry, release_notes_file=str(wrong_shape)), "release notes must map versions to breaking changes"),
        (_args(registry, version="2.0.0:latest"), "version must be a tag"),
        (_args(registry, services=[]), "services must name at least one service"),
    ]:
        proc, result = run_module_result("mcp_release_info", args)
        assert proc.returncode != 0 and result["failed"], (args, proc.stdout + proc.stderr)
        assert result["msg"].startswith(msg), (msg, result["msg"])
        assert "Traceback" not in proc.stdout + proc.stderr
