# -*- coding: utf-8 -*-
"""postgres_failover: the primary_down vote and the gates (pure; an unreachable candidate needs no server).

Promotion against real throwaway PostgreSQL 15 clusters and the module through ``ansible`` are in
tests/component/plugins/module_utils/test_postgres_failover.py; the ordered promote -> diverge -> rejoin flow in
tests/component/plugins/module_utils/test_postgres_rejoin.py.
"""

from __future__ import absolute_import, division, print_function

import pytest
from support.ports import free_port

from ansible_collections.mcp.platform.plugins.module_utils import postgres_failover as ha
from ansible_collections.mcp.platform.plugins.module_utils.errors import PlatformError
from ansible_collections.mcp.platform.plugins.module_utils.postgres import PostgresError

# ----------------------------------------------------------------------------- pure


def test_ha_error_is_a_postgres_error():
    """Whoever catches PostgresError (or PlatformError) catches HAError too; its message is safe to show."""
    assert issubclass(ha.HAError, PostgresError) and issubclass(ha.HAError, PlatformError)
    assert not hasattr(ha, "mask") and not hasattr(ha, "parse_dsn"), "one connection layer: postgres.py"


def test_confirmations_interpreted():
    assert ha.interpret_confirmation(True) is True
    assert ha.interpret_confirmation("false") is False
    assert ha.interpret_confirmation({"failed": True, "msg": "Timeout"}) is True
    assert ha.interpret_confirmation({"is_available": True}) is False
    assert ha.interpret_confirmation({"name": "mcp-1", "unreachable": True}) is None
    assert ha.interpret_confirmation({"skipped": True, "changed": False}) is None
    with pytest.raises(ha.HAError):
        ha.interpret_confirmation({"foo": 1})


# The primary_down vote (pure): vantage points = the controller + every confirmation.

def hosts(*verdicts):
    """mcp-1.. with down (True), up (False) or could-not-be-asked (None)."""
    out = []
    for i, v in enumerate(verdicts, 1):
        name = "mcp-%d" % i
        if v is None:
            out.append({"name": name, "unreachable": True})
        else:
            out.append({"name": name, "down": v, "detail": "10.0.0.1:5432: connection refused" if v else "10.0.0.1:5432 accepts connections"})
    return out


def quorum(controller_down, confirmations, min_confirmations=1, detail="connection refused", secrets=()):
    return ha.primary_down_quorum(controller_down, detail, confirmations, min_confirmations, secrets)


def test_quorum_controller_alone_down_of_four_refused():
    passed, detail, points = quorum(True, hosts(False, False, False))
    assert passed is False
    assert detail.startswith("1 of 4 vantage points report the primary down (a majority, 3, is required)")
    assert "still see it: mcp-1, mcp-2, mcp-3" in detail and "down from: controller;" in detail
    assert [(p["name"], p["status"], p["down"]) for p in points] == [
        ("controller", "down", True), ("mcp-1", "up", False), ("mcp-2", "up", False), ("mcp-3", "up", False)]
    assert points[1]["detail"] == "10.0.0.1:5432 accepts connections"


def test_quorum_partition_controller_and_one_host_refused():
    """The issue's partition: the controller and mcp-1 are cut off from the primary, mcp-2 and mcp-3 still see it."""
    passed, detail, _points = quorum(True, hosts(True, False, False))
    assert passed is False
    assert detail == ("2 of 4 vantage points report the primary down (a majority, 3, is required); still see it: mcp-2, mcp-3; "
                      "down from: controller, mcp-1; controller: connection refused")


def test_quorum_all_down_passes():
    passed, detail, points = quorum(True, hosts(True, True, True))
    assert passed is True
    assert detail.startswith("4 of 4 vantage points report the primary down (a majority, 3, is required); "
                             "down from: controller, mcp-1, mcp-2, mcp-3")
    assert "still see it" not in detail and "could not be asked" not in detail
    assert all(p["down"] for p in points)


def test_quorum_three_of_four_one_host_not_asked_passes():
    passed, detail, points = quorum(True, hosts(True, None, True))
    assert passed is True
    assert detail.startswith("3 of 4 vantage points report the primary down (a majority, 3, is required); "
                             "could not be asked: mcp-2; down from: controller, mcp-1, mcp-3")
    assert points[2] == {"name": "mcp-2", "status": "unknown", "down": False, "detail": "could not be asked (unreachable: true)"}


def test_quorum_hosts_not_asked_stay_in_the_count():
    # Two of four could not be asked: 2 of 4 is no majority (they are not dropped from the electorate).
    passed, detail, _points = quorum(True, hosts(True, None, None))
    assert passed is False
    assert "2 of 4" in detail and "could not be asked: mcp-2, mcp-3" in detail


def test_quorum_controller_must_see_it_down():
    """3 of 4 is a majority, but the controller (where the promotion runs) still reaches the primary: refused."""
    passed, detail, points = quorum(False, hosts(True, True, True), detail="accepting connections")
    assert passed is False
    assert detail.startswith("3 of 4 vantage points report the primary down (a majority, 3, is required); still see it: controller; "
                             "down from: mcp-1, mcp-2, mcp-3; the controller must see it down too")
    assert "fenced=true" in detail and detail.endswith("controller: accepting connections")
    assert points[0] == {"name": "controller", "status": "up", "down": False, "detail": "accepting connections"}
    # No verdict from the controller (e.g. its host name does not resolve): refused as well.
    passed, detail, points = quorum(None, hosts(True, True, True), detail="host name could not be resolved")
    assert passed is False and points[0]["status"] == "unknown"
    assert "could not be asked: controller" in detail


def test_quorum_small_electorates():
    assert quorum(True, hosts(True))[0] is True                      # 2 of 2
    assert quorum(True, hosts(False))[0] is False                    # 1 of 2 is no majority
    assert quorum(True, hosts(True, False))[0] is True               # 2 of 3
    assert quorum(True, hosts(None))[0] is False                     # 1 of 2
    assert quorum(True, [])[0] is False                              # min_confirmations 1: a second vantage point is needed
    passed, detail, _points = quorum(True, [])
    assert "0 vantage point(s) besides the controller report it down, min_confirmations is 1" in detail
    assert quorum(True, [], min_confirmations=0)[0] is True         # the controller alone, when asked for
    assert quorum(False, [], min_confirmations=0)[0] is False


def test_quorum_min_confirmations_on_top_of_the_majority():
    passed, detail, _points = quorum(True, hosts(True, None), min_confirmations=2)   # 2 of 3 is a majority, 1 besides
    assert passed is False and "1 vantage point(s) besides the controller report it down, min_confirmations is 2" in detail
    assert quorum(True, hosts(True, True, None), min_confirmations=2)[0] is True
    with pytest.raises(ha.HAError, match="min_confirmations must not be negative"):
        quorum(True, hosts(True), min_confirmations=-1)


def test_quorum_bools_strings_and_registered_results():
    items = [True, "false", "down", {"failed": True, "msg": "Timeout when waiting for 10.0.0.1:5432"},
             {"reachable": "no"}, {"is_available": True}, {"unreachable": True, "msg": "Failed to connect to the host via ssh"},
             {"skipped": True, "changed": False}]
    passed, _detail, points = quorum(True, items)
    assert [p["name"] for p in points] == ["controller"] + ["vantage-%d" % i for i in range(1, 9)]
    assert [p["status"] for p in points] == ["down", "down", "up", "down", "down", "down", "up", "unknown", "unknown"]
    assert points[4]["detail"] == "Timeout when waiting for 10.0.0.1:5432"
    assert points[7]["detail"] == "Failed to connect to the host via ssh"
    assert passed is True   # 5 of 9


def test_quorum_bad_items_named():
    with pytest.raises(ha.HAError) as err:
        quorum(True, [{"name": "mcp-1", "down": True}, {"name": "mcp-2", "down": "maybe"}])
    assert "item 2 (mcp-2" in str(err.value) and "'down' must be a boolean" in str(err.value)
    with pytest.raises(ha.HAError) as err:
        quorum(True, [True, {"name": "mcp-2", "stdout": "x"}])
    assert "item 2 (mcp-2" in str(err.value) and "'stdout'" in str(err.value) and "'unreachable: true'" in str(err.value)
    with pytest.raises(ha.HAError, match=r"item 1 \(vantage-1, 42\)"):
        quorum(True, [42])
    with pytest.raises(ha.HAError, match=r"item 1 \(vantage-1, 'perhaps'\)"):
        quorum(True, ["perhaps"])
    with pytest.raises(ha.HAError, match="item 2: 'name' must be a non-empty string"):
        quorum(True, [True, {"name": "", "down": True}])
    with pytest.raises(ha.HAError, match=r"item 2: vantage point 'mcp-1' appears twice \(also item 1\)"):
        quorum(True, [{"name": "mcp-1", "down": True}, {"name": "mcp-1", "down": True}])
    with pytest.raises(ha.HAError, match="'controller' appears twice"):
        quorum(True, [{"name": "controller", "down": True}])
    with pytest.raises(ha.HAError, match="must be a list"):
        quorum(True, "true")


def test_quorum_secrets_masked():
    passed, detail, points = quorum(True, [{"name": "mcp-1", "down": True, "detail": "postgresql://u:Hunter2@h/db refused"}],
                                    detail="password=Hunter2 refused", secrets=["Hunter2"])
    assert passed is True
    assert "Hunter2" not in detail and all("Hunter2" not in p["detail"] for p in points)


def test_primary_down_gate_from_probe_and_fenced():
    refused = dict(reachable=False, answered=False, in_recovery=None, detail="Connection refused")
    gate, points = ha.primary_down_gate(refused, hosts(True, False, False))
    assert gate["name"] == "primary_down" and gate["passed"] is False and points[0]["status"] == "down"
    # A refused login proves the server is alive: the controller still sees it.
    login = dict(reachable=False, answered=True, in_recovery=None, detail="password authentication failed")
    gate, points = ha.primary_down_gate(login, hosts(True, True, True))
    assert gate["passed"] is False and points[0]["status"] == "up"
    nodsn = dict(reachable=None, answered=None, in_recovery=None, detail="no primary_dsn given")
    assert ha.primary_down_gate(nodsn, hosts(True))[1][0]["status"] == "unknown"
    # fenced=true passes, the vote still reported; bad items still refused.
    gate, points = ha.primary_down_gate(login, hosts(False, False), fenced=True)
    assert gate["passed"] is True and gate["detail"].startswith("old primary declared fenced (fenced=true)")
    assert "still see it: controller, mcp-1, mcp-2" in gate["detail"] and len(points) == 3
    with pytest.raises(ha.HAError, match="item 1"):
        ha.primary_down_gate(refused, [{"x": 1}], fenced=True)


def test_negative_lag_limits_refused():
    with pytest.raises(ha.HAError, match="max_lag_bytes"):
        ha.validate_limits(-1, 30)
    with pytest.raises(ha.HAError, match="max_lag_seconds"):
        ha.validate_limits(10, -0.5)


def test_unreachable_candidate_clear_message_no_password():
    port = free_port()
    with pytest.raises(ha.HAError) as err:
        ha.evaluate_gates("host=127.0.0.1 port=%d user=x password=TopSecret1" % free_port(),
                          "host=127.0.0.1 port=%d user=x password=TopSecret2" % port, confirmations=[True])
    text = str(err.value)
    assert "cannot connect to candidate_dsn" in text and str(port) in text
    assert "TopSecret" not in text
