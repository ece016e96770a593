# -*- coding: utf-8 -*-
"""rollout: what each replica slot needs (pure). mcp_rollout's refusals through the real `ansible` CLI are in
tests/component.

The replacement itself runs against the lab's engine and gateway in tests/integration (test_rollout_module.py,
test_update_rollback.py).
"""

from __future__ import absolute_import, division, print_function

import json

import pytest

from ansible_collections.mcp.platform.plugins.module_utils import rollout as ro
from ansible_collections.mcp.platform.plugins.module_utils import rollout_plan
from ansible_collections.mcp.platform.plugins.module_utils.gateway_config import guard_urls, render_guard


def ctr(cid, service, replica, version, state="running", port=None, spec=None):
    labels = {ro.SERVICE_LABEL: service, ro.REPLICA_LABEL: str(replica), ro.VERSION_LABEL: version}
    if spec:
        labels[ro.SPEC_LABEL] = spec
    ports = [{"PrivatePort": 8080, "PublicPort": port, "IP": "127.0.0.11", "Type": "tcp"}] if port else []
    return {"Id": cid, "Names": ["/h-%s-%s-v%s" % (service, replica, version)], "State": state, "Labels": labels, "Ports": ports}


def by_slot(slots):
    return dict(((s["service"], s["replica"]), s) for s in slots)


def test_plan_every_slot_at_the_version_is_done():
    found = [ctr("a", "fs", 1, "1.1.0"), ctr("b", "fs", 2, "1.1.0"), ctr("c", "git", 1, "1.1.0"), ctr("d", "git", 2, "1.1.0")]
    slots = ro.plan_slots(found, ["fs", "git"], 2, "1.1.0")
    assert len(slots) == 4
    assert not any(s["todo"] for s in slots)


def test_plan_old_replicas_are_replaced_and_retired():
    found = [ctr("a", "fs", 1, "1.0.0", port=40001), ctr("b", "fs", 2, "1.1.0"), ctr("z", "other", 1, "1.0.0")]
    slots = by_slot(ro.plan_slots(found, ["fs"], 2, "1.1.0"))
    assert set(slots) == {("fs", 1), ("fs", 2)}                 # services not asked for are not planned
    one = slots[("fs", 1)]
    assert one["todo"] and not one["have_new"]
    assert one["old"] == [{"id": "a", "name": "h-fs-1-v1.0.0", "state": "running", "version": "1.0.0",
                           "url": "http://127.0.0.11:40001"}]
    assert not slots[("fs", 2)]["todo"]


def test_plan_new_and_old_both_running_retires_the_old_only():
    # an interrupted earlier run: the new replica is up, the old one still there
    found = [ctr("a", "fs", 1, "1.0.0"), ctr("b", "fs", 1, "1.1.0")]
    one = by_slot(ro.plan_slots(found, ["fs"], 1, "1.1.0"))[("fs", 1)]
    assert one["todo"] and one["have_new"]
    assert [o["id"] for o in one["old"]] == ["a"] and one["stale"] == []


def test_plan_stopped_container_of_the_version_is_started_fresh():
    found = [ctr("b", "fs", 1, "1.1.0", state="exited")]
    one = by_slot(ro.plan_slots(found, ["fs"], 1, "1.1.0"))[("fs", 1)]
    assert one["todo"] and not one["have_new"]
    assert [s["id"] for s in one["stale"]] == ["b"]


def test_plan_missing_slot_is_created():
    one = by_slot(ro.plan_slots([], ["fs"], 3, "2.0.0"))
    assert sorted(one) == [("fs", 1), ("fs", 2), ("fs", 3)]
    assert all(s["todo"] and not s["old"] for s in one.values())


PARAMS = {"env": {"DATABASE_URL": "postgresql://u:p@pg-1/db"}, "bind_address": "10.0.0.1", "container_port": 8080,
          "volumes": ["/d:/data"], "restart_policy": "unless-stopped", "stop_timeout": 30}


def test_spec_digest_is_stable_and_follows_the_environment():
    svc = {"name": "fs", "image": "r/fs:1.1.0", "labels": {"b": "2", "a": "1"}}
    same = dict(PARAMS, volumes=list(PARAMS["volumes"]))
    assert ro.spec_digest(svc, PARAMS) == ro.spec_digest(dict(svc, labels={"a": "1", "b": "2"}), same)
    repointed = dict(PARAMS, env={"DATABASE_URL": "postgresql://u:p@pg-2/db"})
    assert ro.spec_digest(svc, PARAMS) != ro.spec_digest(svc, repointed)
    assert ro.spec_digest(svc, PARAMS) != ro.spec_digest(dict(svc, image="r/fs:1.2.0"), PARAMS)
    assert "p@pg-1" not in ro.spec_digest(svc, PARAMS) and len(ro.spec_digest(svc, PARAMS)) == 16


def test_plan_a_changed_spec_replaces_the_replicas_of_the_same_version():
    found = [ctr("a", "fs", 1, "1.1.0", spec="old"), ctr("b", "fs", 2, "1.1.0", spec="new"), ctr("c", "fs", 3, "1.1.0")]
    slots = by_slot(ro.plan_slots(found, ["fs"], 3, "1.1.0", specs={"fs": "new"}))
    assert slots[("fs", 1)]["todo"] and slots[("fs", 1)]["start"] and [o["id"] for o in slots[("fs", 1)]["old"]] == ["a"]
    assert not slots[("fs", 2)]["todo"]
    assert slots[("fs", 3)]["todo"]          # made before digests existed: converged once
    done = ro.plan_slots([ctr("b", "fs", 1, "1.1.0", spec="new")], ["fs"], 1, "1.1.0", specs={"fs": "new"})
    assert not any(s["todo"] for s in done)


def test_plan_restart_is_in_place_for_every_existing_replica_whatever_its_number():
    found = [ctr("b", "fs", 2, "1.1.0"), ctr("a", "fs", 1, "1.0.0", state="exited"), ctr("n", "fs", 9, "1.1.0"),
             ctr("g", "git", 1, "1.1.0")]
    slots = ro.plan_slots(found, ["fs"], 2, "", mode="restart")
    assert [(s["replica"], s["old"][0]["id"]) for s in slots] == [(1, "a"), (2, "b"), (9, "n")]
    assert all(s["todo"] and s["in_place"] and not s["start"] for s in slots)
    assert ro.plan_slots([], ["fs"], 2, "", mode="restart") == []   # nothing to restart: no slot is created


def test_plan_stop_retires_running_replicas_and_starts_nothing():
    found = [ctr("a", "fs", 1, "1.1.0"), ctr("b", "fs", 2, "1.0.0", state="exited"), ctr("c", "git", 1, "1.1.0")]
    slots = by_slot(ro.plan_slots(found, ["fs"], 2, "", mode="stop"))
    assert slots[("fs", 1)]["todo"] and not slots[("fs", 1)]["start"] and slots[("fs", 1)]["old"][0]["id"] == "a"
    assert not slots[("fs", 2)]["todo"]      # already stopped: nothing to do, so a second stop changes nothing
    assert set(slots) == {("fs", 1), ("fs", 2)}


def test_urls_from_list_and_inspect_formats():
    assert rollout_plan.published_url([{"PrivatePort": 8080, "PublicPort": 4242, "IP": "0.0.0.0"}]) == "http://127.0.0.1:4242"
    assert rollout_plan.published_url([{"PrivatePort": 9090, "PublicPort": 4242, "IP": "127.0.0.12"}]) == ""
    info = {"NetworkSettings": {"Ports": {"8080/tcp": [{"HostIp": "127.0.0.12", "HostPort": "4243"}]}}}
    assert ro.inspect_url(info) == "http://127.0.0.12:4243"
    assert ro.inspect_url({"NetworkSettings": {"Ports": {"8080/tcp": None}}}) == ""


def test_error_message_names_host_service_replica_and_check():
    err = ro.RolloutError("mcp-1, service git replica 2 at 1.2.0", "container health", "unhealthy")
    assert str(err) == "mcp-1, service git replica 2 at 1.2.0: check 'container health' failed: unhealthy"


class _Clock(object):
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_a_drained_replica_is_stopped_only_after_the_gateway_dropped_it(monkeypatch):
    # the gateway sees it DOWN, the engine unhealthy, then a configuration rebuild lists it UP again
    # (a fresh balancer): stopping it then would answer 502; only its absence from the gateway is final
    url = "http://127.0.0.11:31001"
    gateway = [{url: "UP"}, {url: "DOWN"}, {url: "DOWN"}, {url: "UP"}, {url: "UP"}, {}]
    events = []

    def servers(admin_url, service, timeout=5.0):
        seen = gateway.pop(0) if len(gateway) > 1 else gateway[0]
        events.append(("gateway", dict(seen)))
        return seen

    class Api(object):
        def inspect_container(self, ident):
            events.append(("inspect", ident))
            return {"State": {"Running": True, "Health": {"Status": "unhealthy"}}}

        def stop(self, ident, timeout=None):
            events.append(("stop", ident))

        def remove_container(self, ident, force=False, v=False):
            events.append(("remove", ident))

    monkeypatch.setattr(ro.ga, "gateway_servers", servers)
    monkeypatch.setattr(ro.ga, "post", lambda url, timeout=5.0: 200)
    clock = _Clock()
    p = {"drain": True, "force": False, "drain_path": "/drain", "route_timeout": 30, "poll_interval": 0.5,
         "drain_grace": 1, "gateway_admin_url": "http://127.0.0.11:28081", "stop_timeout": 10, "mode": "replace"}
    rollout = ro.Rollout(Api(), p, clock=clock, sleep=clock.sleep)
    out = rollout._retire("filesystem", {"id": "old", "name": "h-filesystem-1-v1.0.0", "version": "1.0.0",
                                         "state": "running", "url": url})
    first_stop = next(i for i, e in enumerate(events) if e[0] in ("stop", "remove"))
    assert events[first_stop - 1] == ("gateway", {}), events
    assert out["drained"] is True
    assert not [e for e in events[first_stop:] if e[0] == "gateway"]


def test_guard_lists_the_new_replicas_first_and_the_kept_ones_as_fallback_then_is_removed(monkeypatch, tmp_path):
    p = {"inventory_host": "mcp-1", "host_label": "mcp-1", "version": "1.1.0", "mode": "replace", "keep_previous": True,
         "container_port": 8080,
         "gateway_dynamic_dir": str(tmp_path), "gateway_admin_url": "http://10.231.0.11:8088", "gateway_health_interval": "1s",
         "route_timeout": 5, "poll_interval": 0.5, "image": None, "env": {"DATABASE_URL": "postgresql://pg-1/mcp"},
         "bind_address": "10.231.0.11", "volumes": [], "restart_policy": "unless-stopped"}
    svc = {"name": "git", "image": "reg/mcp-platform/git:1.1.0", "labels": {}}
    spec = ro.spec_digest(svc, p)
    listing = [ctr("n1", "git", 1, "1.1.0", port=31001, spec=spec), ctr("n2", "git", 2, "1.1.0", port=31002, spec=spec),
               ctr("o1", "git", 1, "1.0.0", port=30001), ctr("o2", "git", 2, "1.0.0", state="exited", port=30002),
               ctr("f1", "filesystem", 1, "1.0.0", port=30101)]
    routers = {"guard-git@file": {"status": "enabled"}}

    class Api(object):
        def containers(self, all=False, filters=None):
            return listing

    monkeypatch.setattr(ro.ga, "gateway_router", lambda url, name, timeout=5.0: routers.get(name))
    monkeypatch.setattr(ro.ga, "gateway_servers", lambda url, name, timeout=5.0, provider="docker":
                        {"http://127.0.0.11:31001": "UP", "http://127.0.0.11:31002": "UP"} if provider == "file" else {})
    clock = _Clock()
    rollout = ro.Rollout(Api(), p, clock=clock, sleep=clock.sleep)
    rollout._guard(svc)
    path = tmp_path / "mcp-guard-git.yml"
    services = json.loads(path.read_text().split("\n", 1)[1])["http"]["services"]
    assert [s["url"] for s in services["guard-git-next"]["loadBalancer"]["servers"]] == [
        "http://127.0.0.11:31001", "http://127.0.0.11:31002"]
    # the running previous replica only (a stopped one serves nothing), no other service's
    assert [s["url"] for s in services["guard-git-previous"]["loadBalancer"]["servers"]] == ["http://127.0.0.11:30001"]
    assert rollout.guarded == ["git"] and rollout.changed
    # a later run (previous replicas retired) removes it and waits until the gateway has dropped the router
    routers.clear()
    p["keep_previous"] = False
    rollout._unguard("git")
    assert not path.exists()


def test_guard_not_loaded_by_the_gateway_names_what_it_saw(monkeypatch, tmp_path):
    p = {"inventory_host": "mcp-1", "host_label": "mcp-1", "version": "1.1.0", "mode": "replace", "keep_previous": True,
         "container_port": 8080,
         "gateway_dynamic_dir": str(tmp_path), "gateway_admin_url": "http://10.231.0.11:8088", "gateway_health_interval": "1s",
         "route_timeout": 3, "poll_interval": 0.5, "env": {}, "bind_address": "10.231.0.11", "volumes": [],
         "restart_policy": "unless-stopped"}
    svc = {"name": "git", "image": "reg/mcp-platform/git:1.1.0", "labels": {}}
    listing = [ctr("n1", "git", 1, "1.1.0", port=31001, spec=ro.spec_digest(svc, p)), ctr("o1", "git", 1, "1.0.0", port=30001)]

    class Api(object):
        def containers(self, all=False, filters=None):
            return listing

    monkeypatch.setattr(ro.ga, "gateway_router", lambda url, name, timeout=5.0: None)
    monkeypatch.setattr(ro.ga, "gateway_servers", lambda url, name, timeout=5.0, provider="docker": {})
    clock = _Clock()
    with pytest.raises(ro.RolloutError) as err:
        ro.Rollout(Api(), p, clock=clock, sleep=clock.sleep)._guard(svc)
    assert "check 'gateway guard' failed" in str(err.value) and "did not load" in str(err.value)


def test_behind_the_guard_a_previous_replica_stops_at_once_and_a_new_one_is_drained_out_of_it_first(monkeypatch, tmp_path):
    (tmp_path / "mcp-guard-git.yml").write_text(render_guard("git", ["http://127.0.0.11:31001"], ["http://127.0.0.11:30001"]))
    events = []
    docker_lb = {"http://127.0.0.11:31001": "UP", "http://127.0.0.11:30001": "UP"}

    class Api(object):
        def stop(self, ident, timeout=None):
            events.append(("stop", ident))
            docker_lb.pop({"new": "http://127.0.0.11:31001", "old": "http://127.0.0.11:30001"}[ident], None)

        def remove_container(self, ident, force=False, v=False):
            events.append(("remove", ident))

    def servers(url, name, timeout=5.0, provider="docker"):
        events.append(("gateway", name))
        if provider == "file":  # the gateway serves what the guard file says
            urls = guard_urls((tmp_path / "mcp-guard-git.yml").read_text(), "git")
            return dict.fromkeys(urls[0] if name == "guard-git-next" else urls[1], "UP")
        return dict(docker_lb)

    monkeypatch.setattr(ro.ga, "gateway_servers", servers)
    monkeypatch.setattr(ro.ga, "post", lambda url, timeout=5.0: events.append(("drain", "new")) or 200)
    p = {"mode": "replace", "keep_previous": False, "gateway_dynamic_dir": str(tmp_path), "gateway_admin_url": "http://gw:8088",
         "drain": True, "force": False, "drain_path": "/drain", "drain_grace": 0, "route_timeout": 10, "poll_interval": 0.5,
         "stop_timeout": 10, "gateway_health_interval": "1s", "inventory_host": "mcp-1"}
    clock = _Clock()
    rollout = ro.Rollout(Api(), p, clock=clock, sleep=clock.sleep)
    # the watch passed: the previous replica behind the guard gets no request, so no drain
    out = rollout._retire("git", {"id": "old", "name": "mcp-1-git-1-v1.0.0", "version": "1.0.0", "state": "running",
                                  "url": "http://127.0.0.11:30001"})
    assert out["behind_guard"] == "previous" and not out["drained"]
    assert events[0] == ("stop", "old") and ("drain", "new") not in events
    # a breach: the new replica is drained until the guard's health check has it DOWN, then stopped
    del events[:]
    out = rollout._retire("git", {"id": "new", "name": "mcp-1-git-1-v1.1.0", "version": "1.1.0", "state": "running",
                                  "url": "http://127.0.0.11:31001"})
    assert out["behind_guard"] == "next" and out["drained"]
    assert events.index(("drain", "new")) < events.index(("gateway", "guard-git-next")) < events.index(("stop", "new"))
    # it left the guard's rotation before it stopped: with no new replica left the routers go to the previous ones
    conf = json.loads((tmp_path / "mcp-guard-git.yml").read_text().split("\n", 1)[1])["http"]
    assert "guard-git-next" not in conf["services"] and conf["routers"]["guard-git"]["service"] == "guard-git-previous"
