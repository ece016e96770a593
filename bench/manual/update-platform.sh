#!/bin/bash
# The operations manual's update-platform.sh (Update Procedure), run ON one lab MCP host as root (an operator's
# `ssh <host> sudo ./update-platform.sh`; bench/update.py pipes it over SSH). The lab's hosts have Podman, not the
# docker CLI: `podman` stands in for `docker` / `docker compose`, on the host's own engine.
#   1. pull the new images   2. set VERSION in platform.env   3. run the migrations
#   4. "docker compose up --scale <svc>=2N", sleep, "--scale <svc>=N": here N new replicas at the new
#      version start next to the old ones, the script sleeps, then the old replicas are removed abruptly
#      (compose scale-down stops them with no drain)   5. wait until every replica is healthy.
# Usage: update-platform.sh VERSION HOST ADDRESS [SLEEP_SECONDS]
#   HOST: the inventory name (the io.mcp-platform.host label), ADDRESS: the host's address (replicas bind there)
#   env: MCP_REGISTRY (required: the registry, host:port), MCP_SERVICES, MCP_REPLICAS, MCP_CONFIG_DIR, MCP_DATA_DIR
set -euo pipefail

VERSION=${1:?usage: $0 VERSION HOST ADDRESS [SLEEP]}
HOST=${2:?host}
ADDR=${3:?address}
SLEEP=${4:-30}
REGISTRY=${MCP_REGISTRY:?MCP_REGISTRY (host:port of the image registry)}
SERVICES=${MCP_SERVICES:-"filesystem git"}
REPLICAS=${MCP_REPLICAS:-2}
ENV_FILE="${MCP_CONFIG_DIR:-/etc/mcp}/platform.env"
DATA="${MCP_DATA_DIR:-/var/lib/mcp/data}"
DATABASE_URL=$(sed -n 's/^DATABASE_URL=//p' "$ENV_FILE")

echo "Updating MCP Platform on $HOST to version ${VERSION}"

echo "Pulling images..."
for svc in $SERVICES migrations; do podman pull -q --tls-verify=false "$REGISTRY/mcp-platform/$svc:$VERSION" >/dev/null; done

echo "Updating configuration..."
sed -i "s/^VERSION=.*/VERSION=${VERSION}/" "$ENV_FILE"

echo "Running migrations..."
podman run --rm --network host -e DATABASE_URL="$DATABASE_URL" "$REGISTRY/mcp-platform/migrations:$VERSION" up >/dev/null

echo "Performing rolling update..."
for svc in $SERVICES; do
  old=$(podman ps -a -q --filter label=io.mcp-platform.managed=true --filter "label=io.mcp-platform.host=$HOST" \
        --filter "label=io.mcp-platform.service=$svc")
  for r in $(seq 1 "$REPLICAS"); do
    name="$HOST-$svc-$r-v$VERSION"
    podman rm -f "$name" >/dev/null 2>&1 || true
    podman run -d --name "$name" --restart unless-stopped -p "$ADDR::8080" -v "$DATA:/data" \
      -e MCP_SERVICE="$svc" -e DATABASE_URL="$DATABASE_URL" \
      -l io.mcp-platform.lab=true -l io.mcp-platform.managed=true -l "io.mcp-platform.host=$HOST" \
      -l "io.mcp-platform.service=$svc" -l "io.mcp-platform.version=$VERSION" -l "io.mcp-platform.replica=$r" \
      -l traefik.enable=true \
      -l "traefik.http.routers.$svc.rule=PathPrefix(\`/mcp/$svc\`)" -l "traefik.http.routers.$svc.entrypoints=web" \
      -l "traefik.http.routers.$svc.middlewares=$svc-strip" -l "traefik.http.routers.$svc.service=$svc" \
      -l "traefik.http.routers.$svc-tls.rule=PathPrefix(\`/mcp/$svc\`)" -l "traefik.http.routers.$svc-tls.entrypoints=websecure" \
      -l "traefik.http.routers.$svc-tls.tls=true" -l "traefik.http.routers.$svc-tls.middlewares=$svc-strip" \
      -l "traefik.http.routers.$svc-tls.service=$svc" \
      -l "traefik.http.middlewares.$svc-strip.stripprefix.prefixes=/mcp/$svc" \
      -l "traefik.http.services.$svc.loadbalancer.server.port=8080" \
      -l "traefik.http.services.$svc.loadbalancer.healthcheck.path=/health" \
      -l "traefik.http.services.$svc.loadbalancer.healthcheck.interval=1s" \
      -l "traefik.http.services.$svc.loadbalancer.healthcheck.timeout=1s" \
      "$REGISTRY/mcp-platform/$svc:$VERSION" >/dev/null
  done
  sleep "$SLEEP"
  # scale back: the old replicas go, no drain
  [ -n "$old" ] && podman rm -f -t 0 $old >/dev/null
done

echo "Verifying update..."
deadline=$((SECONDS + 300))
while [ $SECONDS -lt $deadline ]; do
  bad=$(podman ps -q --filter label=io.mcp-platform.managed=true --filter "label=io.mcp-platform.host=$HOST" \
        --filter health=starting --filter health=unhealthy | wc -l)
  [ "$bad" -eq 0 ] && break
  sleep 1
done
echo "Update completed successfully!"
