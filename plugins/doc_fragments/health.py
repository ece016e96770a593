# -*- coding: utf-8 -*-
# Copyright: mcp.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # The check definitions of mcp.platform.mcp_health (the C(checks) option and its suboptions).
    DOCUMENTATION = r"""
options:
  checks:
    description:
      - The checks to run, all at once (up to O(concurrency) in parallel).
      - Each check has a O(checks[].name), a O(checks[].type) and the keys of that type; a key that does not
        belong to the type is an error, so a typo cannot silently disable a check.
      - "Keys per type: V(http): O(checks[].url), O(checks[].status_code), O(checks[].body_regex), O(checks[].headers),
        O(checks[].validate_certs).
        V(mcp): O(checks[].url), O(checks[].headers), O(checks[].validate_certs), O(checks[].protocol_version),
        O(checks[].expect_server_name), O(checks[].expect_version), O(checks[].min_tools), O(checks[].delete_session).
        V(tcp): O(checks[].host), O(checks[].port).
        V(tls): O(checks[].host), O(checks[].port), O(checks[].server_name), O(checks[].warn_days), O(checks[].crit_days),
        O(checks[].validate_certs).
        V(postgres): O(checks[].dsn), O(checks[].password), O(checks[].expect_role), O(checks[].max_lag_seconds),
        O(checks[].max_lag_bytes).
        V(redis): O(checks[].url), O(checks[].username), O(checks[].password), O(checks[].validate_certs).
        V(mongodb): O(checks[].uri).
        V(container): O(checks[].service), O(checks[].docker_host), O(checks[].platform_host), O(checks[].labels),
        O(checks[].min_replicas), O(checks[].max_restarts), O(checks[].probe_path), O(checks[].probe_port).
        V(logs): O(checks[].docker_host), O(checks[].service), O(checks[].platform_host), O(checks[].labels),
        O(checks[].since), O(checks[].warn_errors), O(checks[].crit_errors), O(checks[].last).
        V(disk): O(checks[].path), O(checks[].warn_percent), O(checks[].crit_percent).
        V(memory): O(checks[].warn_percent), O(checks[].crit_percent).
        V(gateway_errors): O(checks[].url), O(checks[].services), O(checks[].max_ratio), O(checks[].baseline),
        O(checks[].validate_certs).
        Every type also accepts O(checks[].timeout)."
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Unique name of the check, used in the report and in failure messages.
        type: str
        required: true
      type:
        description:
          - What to check.
          - V(http) GETs O(checks[].url) and checks the status code and optionally the body.
          - V(mcp) performs a real MCP handshake over Streamable HTTP (C(initialize), C(notifications/initialized),
            C(tools/list)) against O(checks[].url); a service whose C(/health) answers 200 but which cannot complete
            the handshake is V(crit).
          - V(tcp) opens a TCP connection. V(tls) reads the server certificate (even self-signed) and checks the days
            until it expires.
          - V(postgres) connects, runs C(SELECT 1) and reports the role (primary/replica) and replication lag
            (needs C(psycopg2) or C(psycopg) on the managed node).
          - V(redis) sends C(PING) (no library needed). V(mongodb) runs C(ping) (needs C(pymongo); V(unknown) without it).
          - V(container) inspects every replica of a platform service through the Docker-compatible API (needs the
            C(docker) Python SDK), found by the label C(io.mcp-platform.service).
          - V(disk) and V(memory) compare the used percentage with thresholds (memory from C(/proc/meminfo)
            C(MemAvailable)).
        type: str
        required: true
        choices: [http, mcp, tcp, tls, postgres, redis, mongodb, container, logs, disk, memory, gateway_errors]
      timeout:
        description:
          - Seconds for each network operation of this check. Defaults to the module's O(timeout).
        type: float
      url:
        description:
          - V(http), V(mcp) - the C(http://) or C(https://) URL, for V(mcp) the MCP endpoint such as
            C(http://host:28080/mcp/filesystem/mcp).
          - V(redis) - C(redis://[[user]:password@]host[:port][/db]) or C(rediss://) for TLS. Prefer O(checks[].password)
            over a password in the URL; a password in the URL is masked in the output.
          - V(gateway_errors) - the gateway's Prometheus metrics, for example C(http://host:8088/metrics).
        type: str
      status_code:
        description: V(http) - accepted HTTP status codes. Default V([200]).
        type: list
        elements: int
      body_regex:
        description: V(http) - a regular expression (Python C(re.search)) the response body must match.
        type: str
      headers:
        description:
          - V(http), V(mcp) - extra request headers. No header value reaches the module's invocation log
            (syslog or the journal on the managed node). Values of headers whose names look secret
            (C(Authorization), C(Cookie), C(*token*), C(*api-key*), ...) are also masked in the output.
        type: dict
      validate_certs:
        description:
          - V(http), V(mcp), V(redis), V(gateway_errors) - verify the server certificate for HTTPS/C(rediss://). Default V(true).
          - V(tls) - also require the certificate to verify against the system CAs and match O(checks[].server_name);
            the expiry is reported either way. Default V(false).
        type: bool
      protocol_version:
        description: V(mcp) - protocol version offered in C(initialize). Default V(2025-06-18).
        type: str
      expect_server_name:
        description: V(mcp) - V(crit) unless C(serverInfo.name) equals this.
        type: str
      expect_version:
        description: V(mcp) - V(crit) unless C(serverInfo.version) equals this.
        type: str
      min_tools:
        description: V(mcp) - V(crit) if C(tools/list) returns fewer tools.
        type: int
      delete_session:
        description: V(mcp) - end the MCP session with an HTTP C(DELETE) after the probe. Default V(true).
        type: bool
      host:
        description: V(tcp), V(tls) - host name or address to connect to.
        type: str
      port:
        description: V(tcp), V(tls) - TCP port. Required for V(tcp); default V(443) for V(tls).
        type: int
      server_name:
        description: V(tls) - the name sent as SNI (and verified with O(checks[].validate_certs)). Defaults to O(checks[].host).
        type: str
      warn_days:
        description: V(tls) - V(warn) when the certificate expires within this many days. Default V(30).
        type: float
      crit_days:
        description: V(tls) - V(crit) when the certificate expires within this many days (or has expired). Default V(7).
        type: float
      dsn:
        description:
          - V(postgres) - a libpq connection URI (C(postgresql://user:password@host:port/db)) or key/value string
            (C(host=... dbname=...)). Its password is never shown; the output shows C(postgresql://user:********@host/db).
        type: str
      password:
        description: V(postgres), V(redis) - password, kept out of the O(checks[].dsn) and O(checks[].url).
        type: str
      username:
        description: V(redis) - ACL user name for C(AUTH) (Redis 6+).
        type: str
      expect_role:
        description: V(postgres) - V(crit) unless the server is in this role.
        type: str
        choices: [primary, replica]
      max_lag_seconds:
        description:
          - V(postgres) - V(crit) when the replication lag exceeds this many seconds (on a replica its replay lag,
            on a primary the largest C(replay_lag) in C(pg_stat_replication)).
        type: float
      max_lag_bytes:
        description: V(postgres) - V(crit) when the replication lag exceeds this many bytes of WAL.
        type: int
      uri:
        description: V(mongodb) - a C(mongodb://) or C(mongodb+srv://) URI. Its password is never shown.
        type: str
      service:
        description: V(container), V(logs) - the service, matched against the label C(io.mcp-platform.service) (V(logs) - optional).
        type: str
      docker_host:
        description:
          - V(container), V(logs) - Docker-compatible API address, for example C(unix:///run/podman/podman.sock)
            or C(tcp://host:2375). Defaults to the C(DOCKER_HOST) environment (or the local Docker socket).
        type: str
      platform_host:
        description: V(container), V(logs) - only containers whose label C(io.mcp-platform.host) has this value (the inventory host).
        type: str
      labels:
        description: V(container), V(logs) - further labels every container must carry.
        type: dict
      min_replicas:
        description: V(container) - V(crit) if fewer replicas are running and healthy (or have no health check). Default V(1).
        type: int
      max_restarts:
        description: V(container) - V(warn) when a replica's restart count exceeds this. Not checked by default.
        type: int
      probe_path:
        description:
          - V(container) - also GET this path (for example V(/health)) on every running replica's published
            O(checks[].probe_port), bypassing the gateway; a replica that does not answer 200 is not ready.
        type: str
      probe_port:
        description: V(container) - the container port whose published host port O(checks[].probe_path) is requested on. Default V(8080).
        type: int
      since:
        description: V(logs) - how far back to read the containers' logs, in seconds. Default V(86400).
        type: int
      warn_errors:
        description: V(logs) - V(warn) from this many error lines (0 never warns). Default V(1).
        type: int
      crit_errors:
        description: V(logs) - V(crit) from this many error lines. Default V(100).
        type: int
      last:
        description: V(logs) - how many of the newest error and warning lines to return in C(details.last). Default V(20).
        type: int
      path:
        description: V(disk) - a path on the file system to check.
        type: path
      warn_percent:
        description: V(disk), V(memory) - V(warn) at this used percentage (0-100). Default V(80) for disk, V(75) for memory.
        type: float
      crit_percent:
        description:
          - V(disk), V(memory) - V(crit) at this used percentage (0-100, at least O(checks[].warn_percent)).
            Default V(90) for disk, V(85) for memory.
        type: float
      services:
        description:
          - V(gateway_errors) - the gateway services whose answers count (Traefik C(<name>@<provider>), or the bare name
            for every provider).
        type: list
        elements: str
      max_ratio:
        description: V(gateway_errors) - V(crit) when more than this share of the answers was 5xx. Default V(0.01).
        type: float
      baseline:
        description:
          - V(gateway_errors) - the C(requests) and C(errors) counters of an earlier result's C(details); the check then
            judges only the answers since. A counter lower than its baseline (the gateway restarted) counts from zero.
        type: dict
"""
