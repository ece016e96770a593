#!/bin/sh
# A lab host's init (what systemd would start at boot), run by catatonit as the host's PID 1.
# Logs go to /run/mcp-lab/logs (the lab reads them from outside); /run/mcp-lab/booted says the host is up.
#   init.sh KIND
KIND=$1
L=/usr/local/lib/mcp-lab
S=/run/mcp-lab
mkdir -p /run/sshd "$S/logs"
rm -f "$S/booted"
. "$L/host.env"

/usr/sbin/sshd -E "$S/logs/sshd.log"

case "$KIND" in
mcp)
    # the engine's socket where Docker clients look for it by default (unix:///var/run/docker.sock)
    ln -sf podman/podman.sock /run/docker.sock
    rm -f /run/podman/podman.sock
    podman system service --time=0 unix:///run/podman/podman.sock >>"$S/logs/podman.log" 2>&1 &
    i=0; while [ ! -S /run/podman/podman.sock ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
    # podman-restart.service: the containers that should come back after a reboot do
    for c in $(podman ps -a --format '{{.ID}}' --filter label=io.mcp-platform.managed=true 2>/dev/null); do
        case "$(podman inspect --format '{{.HostConfig.RestartPolicy.Name}}' "$c" 2>/dev/null)" in
        always|unless-stopped) podman start "$c" >>"$S/logs/podman-restart.log" 2>&1 ;;
        esac
    done
    python3 "$L/health_pump.py" --socket /run/podman/podman.sock >>"$S/logs/health-pump.log" 2>&1 &
    /usr/local/bin/traefik --configfile="$L/traefik.yml" >>"$S/logs/traefik.log" 2>&1 &
    python3 "$L/responder.py" --listen "0.0.0.0:$LAB_RESPONDER_PORT" --state-file /var/lib/mcp/maintenance.json \
        --maintenance-lib "$L/maintenance.py" >>"$S/logs/responder.log" 2>&1 &
    ;;
pg)
    install -d -o postgres -g postgres -m 2775 /run/postgresql
    install -d -o postgres -g postgres -m 755 /var/log/postgresql
    # as the Debian package leaves them: the server's user owns its folders (server logs may go next to the cluster)
    install -d -o postgres -g postgres -m 755 /var/lib/postgresql "$(dirname "$LAB_PGDATA")"
    if [ -f "$LAB_PGDATA/PG_VERSION" ]; then
        runuser -u postgres -- "$LAB_PGBIN/pg_ctl" -D "$LAB_PGDATA" -l /var/log/postgresql/postgresql.log -w -t 60 start \
            >>"$S/logs/postgres.log" 2>&1
    fi
    ;;
esac

touch "$S/booted"
# catatonit reaps what the daemons leave; this shell just stays (the host is up while PID 1 lives)
exec sleep infinity
