#!/usr/bin/env python3
"""The local lab: a whole MCP Platform on this machine, its hosts real hosts reached over SSH.

    lab.py up [--only STEP ...]          build and start what is missing (idempotent; a half-up lab is completed)
    lab.py provision                     the collection's node role on every host, then its deploy (installed tarball)
    lab.py down                          stop every host and daemon, remove the namespaces and rules it made
    lab.py status [--strict]             what runs where
    lab.py clean                         down, then remove the lab folder and the lab's images
    lab.py host kill|boot|reboot NAME    pull a host's plug (every process at once) / power it on
    lab.py host create NAME --address A --kind mcp|pg    a fresh host outside the inventory (a scenario's own)
    lab.py host destroy NAME             power it off and discard its disk
    lab.py host exec NAME -- ARGV...     run a command on a host as root (the lab's backdoor, for tests)
    lab.py fault cut A B                 drop all traffic between A and B (hosts, `controller`, `infra`)
    lab.py fault isolate A               cut A off from everything
    lab.py fault heal [A]                remove every cut (or those involving A)
    lab.py fault delay A MS              add latency towards A (needs tc netem)
    lab.py fault list

Everything lives in $MCP_LAB_DIR (default .lab/). The hosts (inventories/lab/hosts.yml: groups mcp_hosts and
postgres) each get a network namespace on the bridge, their own root filesystem, sshd, and their engine and
gateway or their PostgreSQL server; the shared infrastructure listens on the bridge's infrastructure address.
The collection itself prepares the hosts (playbooks/node.yml) and deploys the platform (playbooks/deploy.yml):
`make lab-up` runs both after `lab.py up`.

Why a Python script and not a playbook: the machines under the platform (network, hosts, registry, databases)
have to exist before any inventory host is reachable, and each failure must end in one line naming the host and
the cause.
"""
import argparse
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mcplab import hosts, images, infra, net, packages, postgres, provision  # noqa: E402
from mcplab.common import LAB, LabError, lab_hosts, log, path  # noqa: E402


def step_hosts():
    return hosts.ensure(lab_hosts())


STEPS = [
    ("packages", packages.ensure_packages),
    ("network", net.ensure_bridge),
    ("registry", infra.up_registry),
    ("images", images.build_images),
    ("stale", images.remove_stale_containers),
    ("wheels", infra.up_wheels),
    ("apt-proxy", infra.up_apt_proxy),
    ("redis", infra.up_redis),
    ("s3", infra.up_s3),
    ("smtp", infra.up_smtp),
    ("hosts", step_hosts),
    ("postgres", lambda: postgres.ensure(lab_hosts())),
    ("monitoring", lambda: infra.up_monitoring(lab_hosts())),
]


def remember_daemons():
    from mcplab.common import running_pid
    for name in infra.DAEMONS:
        pid = running_pid(name)
        if pid:
            net.remember_pid(pid)


def cmd_up(args):
    t0 = time.time()
    changed = []
    for name, step in STEPS:
        if args.only and name not in args.only:
            continue
        t = time.time()
        if step():
            changed.append(name)
            log("%-12s changed (%.1fs)" % (name, time.time() - t))
    remember_daemons()
    log("up in %.1fs; %s" % (time.time() - t0, "changed: " + ", ".join(changed) if changed else "nothing changed"))
    with open(path("run", "up.json"), "w") as f:
        json.dump({"changed": changed, "seconds": round(time.time() - t0, 1)}, f)


def cmd_provision(args):
    t0 = time.time()
    provision.provision()
    log("provisioned in %.1fs" % (time.time() - t0))


def cmd_down(args):
    inv = lab_hosts()
    known = set(inv)
    if os.path.isdir(path("hosts")):
        known |= set(os.listdir(path("hosts")))
    for name in sorted(known):
        if hosts.is_up(name):
            hosts.shutdown(name)
            log("%s: down" % name)
    infra.down()
    net.teardown()
    log("down")


def cmd_status(args):
    rows = [(name, state) for name, state in infra.daemons_status()]
    inv = lab_hosts()
    rows += hosts.status(inv)
    rows += [("postgres " + n, role) for n, role in postgres.roles(inv)] if any(hosts.is_up(n) for n in inv) else []
    faults = net.load_faults()
    rows.append(("faults", ", ".join("%s x %s" % tuple(c) for c in faults["cuts"]) or "none"))
    for name, state in rows:
        print("%-26s %s" % (name, state))
    if args.strict and any(s.startswith("down") or "DOWN" in s for _, s in rows):
        raise LabError("some lab parts are down")


def cmd_clean(args):
    cmd_down(args)
    images.remove_images()
    shutil.rmtree(LAB, ignore_errors=True)
    log("removed %s" % LAB)


def cmd_host(args):
    if args.action == "create":
        return host_create(args)
    inv = lab_hosts()
    if args.action == "destroy":
        return host_destroy(args, inv)
    if args.name not in inv:
        raise LabError("unknown host %s (the inventory has %s)" % (args.name, ", ".join(inv)))
    if args.action == "kill":
        log("%s: %s" % (args.name, "killed" if hosts.kill(args.name) else "was not up"))
    elif args.action == "boot":
        t = time.time()
        if hosts.boot(args.name, inv[args.name]):
            log("%s: up in %.1fs" % (args.name, time.time() - t))
    elif args.action == "reboot":
        hosts.shutdown(args.name)
        hosts.boot(args.name, inv[args.name])
        log("%s: rebooted" % args.name)
    elif args.action == "exec":
        argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        res = hosts.execute(args.name, argv, check=False)
        sys.stdout.write(res.stdout)
        sys.exit(res.returncode)


def host_create(args):
    import ipaddress

    from mcplab.common import extra_hosts, save_extra_hosts
    inv = lab_hosts()
    if not args.address or args.kind not in ("mcp", "pg"):
        raise LabError("host create needs --address and --kind mcp|pg")
    if args.name in inv and args.name not in extra_hosts():
        raise LabError("%s is an inventory host" % args.name)
    taken = {h["address"]: n for n, h in inv.items() if n != args.name}
    if args.address in taken or args.address in (net.CONTROLLER, net.INFRA):
        raise LabError("address %s is taken (by %s)" % (args.address, taken.get(args.address, "the lab")))
    if ipaddress.ip_address(args.address) not in net.NETWORK:
        raise LabError("address %s is outside the lab network %s" % (args.address, net.NETWORK))
    extra = extra_hosts()
    extra[args.name] = {"address": args.address, "kind": args.kind, "vars": {}}
    save_extra_hosts(extra)
    hosts.ensure(lab_hosts())
    log("%s: created at %s (%s)" % (args.name, args.address, args.kind))


def host_destroy(args, inv):
    from mcplab.common import extra_hosts, save_extra_hosts
    extra = extra_hosts()
    if args.name not in extra:
        raise LabError("%s was not made by `host create` (inventory hosts stay; use kill)" % args.name)
    hosts.kill(args.name)
    shutil.rmtree(path("hosts", args.name), ignore_errors=True)
    del extra[args.name]
    save_extra_hosts(extra)
    hosts.write_known_hosts(lab_hosts())
    log("%s: destroyed" % args.name)


def cmd_fault(args):
    inv = lab_hosts()
    if args.action == "cut":
        net.cut(args.a, args.b, inv)
    elif args.action == "isolate":
        net.isolate(args.a, inv)
    elif args.action == "heal":
        net.heal(inv, args.a)
    elif args.action == "delay":
        net.delay(args.a, int(args.b))
    print(json.dumps(net.load_faults()))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up")
    up.add_argument("--only", nargs="*", help="run only these steps")
    sub.add_parser("provision")
    sub.add_parser("down")
    st = sub.add_parser("status")
    st.add_argument("--strict", action="store_true")
    sub.add_parser("clean")
    h = sub.add_parser("host")
    h.add_argument("action", choices=["kill", "boot", "reboot", "exec", "create", "destroy"])
    h.add_argument("name")
    h.add_argument("--address")
    h.add_argument("--kind", default="mcp")
    h.add_argument("argv", nargs="*", help="exec: the command, after --")
    f = sub.add_parser("fault")
    f.add_argument("action", choices=["cut", "isolate", "heal", "delay", "list"])
    f.add_argument("a", nargs="?")
    f.add_argument("b", nargs="?")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("lab: ERROR: the lab makes network namespaces and mounts: run it as root", file=sys.stderr)
        sys.exit(1)
    os.makedirs(path("run"), exist_ok=True)
    os.makedirs(path("logs"), exist_ok=True)
    try:
        {"up": cmd_up, "provision": cmd_provision, "down": cmd_down, "status": cmd_status, "clean": cmd_clean, "host": cmd_host,
         "fault": cmd_fault}[args.cmd](args)
    except LabError as e:
        print("lab: ERROR: %s" % e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
