# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gateway labels the deploy and update roles both give a replica."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.mcp.platform.plugins.filter.gateway_labels import FilterModule, gateway_labels


def test_routes_both_entry_points_strips_the_prefix_and_health_checks():
    labels = gateway_labels("git", health_interval="2s")
    assert labels["traefik.enable"] == "true"
    for router in ("git", "git-tls"):
        assert labels["traefik.http.routers.%s.rule" % router] == "PathPrefix(`/mcp/git`)"
        assert labels["traefik.http.routers.%s.middlewares" % router] == "git-strip"
        assert labels["traefik.http.routers.%s.service" % router] == "git"
    assert labels["traefik.http.routers.git.entrypoints"] == "web"
    assert labels["traefik.http.routers.git-tls.entrypoints"] == "websecure"
    assert labels["traefik.http.routers.git-tls.tls"] == "true"
    assert labels["traefik.http.middlewares.git-strip.stripprefix.prefixes"] == "/mcp/git"
    assert labels["traefik.http.services.git.loadbalancer.server.port"] == "8080"
    assert labels["traefik.http.services.git.loadbalancer.healthcheck.path"] == "/health"
    assert labels["traefik.http.services.git.loadbalancer.healthcheck.interval"] == "2s"
    assert labels["traefik.http.services.git.loadbalancer.healthcheck.timeout"] == "1s"
    # container labels are strings only
    assert all(isinstance(v, str) for v in labels.values())
    assert FilterModule().filters()["gateway_labels"] is gateway_labels


@pytest.mark.parametrize("bad", ["", "Git", "a/b", "x`)||PathPrefix(`/", None, 3])
def test_a_name_that_would_break_the_rule_is_refused(bad):
    with pytest.raises(AnsibleFilterError, match="service name"):
        gateway_labels(bad)
