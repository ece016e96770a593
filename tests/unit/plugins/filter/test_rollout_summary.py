"""rollout_summary: the operator's line per slot, for each mode."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mcp.platform.plugins.filter.rollout_summary import rollout_summary


def test_replaced_restarted_stopped_and_untouched_slots():
    replaced = [{"service": "git", "replica": 1, "new": "mcp-1-git-1-v1.1.0", "healthy_after": 1.6, "routed_after": 2.3,
                 "retired": [{"name": "mcp-1-git-1-v1.0.0", "seconds": 2.1}]},
                {"service": "git", "replica": 2, "new": None, "retired": []}]
    assert rollout_summary(replaced, "replace", "1.1.0") == [
        "git 1: mcp-1-git-1-v1.1.0 healthy 1.6 s, routed 2.3 s, retired mcp-1-git-1-v1.0.0 in 2.1 s",
        "git 2: already at 1.1.0"]
    assert rollout_summary([{"service": "fs", "replica": 1, "restarted": "c1", "healthy_after": 1, "routed_after": 2,
                             "drained": True}], "restart") == ["fs 1: restarted c1 healthy 1 s, routed 2 s (drained first)"]
    assert rollout_summary([{"service": "fs", "replica": 2, "retired": [{"name": "c2", "seconds": 0.4}]}], "stop") == \
        ["fs 2: stopped c2 in 0.4 s"]
    assert rollout_summary([]) == ["nothing to do"]


def test_not_a_list_names_the_filter():
    with pytest.raises(AnsibleFilterError, match="rollout_summary: expected the replaced list"):
        rollout_summary({"replaced": []})
