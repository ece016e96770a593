#!/bin/sh
# A lab host's power-on, before its own init: run by hack/mcplab/hosts.py as PID 1 of the host's new PID
# namespace, already inside the host's network namespace and a new private mount and UTS namespace, still
# seeing the controller's filesystem. It mounts the host's disk (the image read-only under the host's own
# overlay), its own /proc, /run and /tmp, the folders that are its own (and that the lab reads from outside),
# then pivots into that root and hands over to catatonit (reaps orphans) running the host's init.
#   boot.sh NAME KIND IMAGE_DIR HOST_DIR SSH_USER
set -eu
NAME=$1 KIND=$2 IMAGE=$3 H=$4 U=$5
R=$H/root

mount --make-rprivate /
mount -t overlay overlay -o "lowerdir=$IMAGE,upperdir=$H/disk/upper,workdir=$H/disk/work" "$R"
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount --rbind /dev "$R/dev"
mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
mount -t tmpfs -o mode=755 tmpfs "$R/run"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"

bind() {  # bind SRC DEST [ro]
    mkdir -p "$R$2"
    mount --bind "$1" "$R$2"
    if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$R$2"; fi
}
bind "$H/provision" /usr/local/lib/mcp-lab ro
bind "$H/state" /run/mcp-lab
case "$KIND" in
mcp)
    bind "$H/etc-mcp" /etc/mcp
    bind "$H/var-lib-mcp" /var/lib/mcp
    bind "$H/containers" /var/lib/containers
    bind "$H/run-podman" /run/podman
    # CNI's address leases live where a reboot forgets them (as netavark's do): a fresh network namespace
    # each boot would otherwise find every address still "allocated"
    mount -t tmpfs tmpfs "$R/var/lib/cni"
    ;;
pg)
    bind "$H/postgresql" /var/lib/postgresql
    ;;
esac

hostname "$NAME"
echo "$NAME" > "$R/etc/hostname"
cp "$H/provision/hosts" "$R/etc/hosts"
install -d -m 700 -o 1000 -g 1000 "$R/home/$U/.ssh"
install -m 600 -o 1000 -g 1000 "$H/provision/authorized_keys" "$R/home/$U/.ssh/authorized_keys"

cd "$R"
pivot_root . .oldroot
cd /
umount -l /.oldroot
exec /usr/bin/catatonit -- /bin/sh /usr/local/lib/mcp-lab/init.sh "$KIND"
