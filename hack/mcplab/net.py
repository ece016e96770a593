"""The lab network: one bridge, the controller and infrastructure addresses on it, a network namespace per host.

Kernel objects outlive the processes that made them (and a checkout), so what the lab creates is recorded in
/run/mcplab/<bridge>.json (/run has the same lifetime as the namespaces): `down` removes exactly what is
recorded there, by name, and a second checkout finds out whose lab holds the bridge. Faults are nftables rules
on the bridge (a switch's ACL), kept in the lab's own table, so a host's own firewall and its engine's rules are
never touched and a partition survives a host's reboot like a real network fault would.
"""
import ipaddress
import json
import os
import subprocess

from .common import CFG, LAB, LabError, log, pid_alive, run

RECORD_DIR = "/run/mcplab"
BRIDGE = CFG["lab_bridge"]
NETWORK = ipaddress.ip_network(CFG["lab_network"])
CONTROLLER = CFG["lab_controller_address"]
INFRA = CFG["lab_infra_address"]
NFT_TABLE = "mcplab_faults"
# Names a fault can use besides inventory hosts.
SPECIAL = {"controller": CONTROLLER, "infra": INFRA}


def netns_name(host):
    return "mcplab-" + host


def veth_name(host):
    name = "mlab-" + host
    if len(name) > 15:
        raise LabError("host name %s is too long for the lab (its interface %s would be over 15 characters)" % (host, name))
    return name


# ---------------------------------------------------------------- the record

def record_path():
    return os.path.join(RECORD_DIR, BRIDGE + ".json")


def load_record():
    try:
        with open(record_path()) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def save_record(rec):
    os.makedirs(RECORD_DIR, exist_ok=True)
    tmp = record_path() + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rec, f, indent=1, sort_keys=True)
    os.replace(tmp, record_path())


def claim():
    """The record for this lab folder, taking over one left by a lab whose processes are all gone."""
    rec = load_record()
    if rec and rec.get("lab_dir") != LAB:
        alive = [p for p in rec.get("pids", []) if pid_alive(p)]
        if alive:
            raise LabError("the lab network %s belongs to the lab in %s, which is up (pid %d): run `make lab-down` there first"
                           % (BRIDGE, rec.get("lab_dir"), alive[0]))
        log("taking over the network left by the lab in %s (none of its processes is alive)" % rec.get("lab_dir"))
        rec["lab_dir"] = LAB
        save_record(rec)
    if not rec:
        rec = {"lab_dir": LAB, "bridge": None, "addresses": [], "netns": [], "veths": [], "pids": [], "nft": False}
        save_record(rec)
    return rec


def remember(key, value):
    rec = claim()
    if value not in rec[key]:
        rec[key].append(value)
        save_record(rec)


def forget(key, value):
    rec = load_record()
    if rec and value in rec.get(key, []):
        rec[key].remove(value)
        save_record(rec)


def remember_pid(pid):
    rec = claim()
    rec["pids"] = [p for p in rec["pids"] if pid_alive(p)] + [pid]
    save_record(rec)


# ---------------------------------------------------------------- inspection

def ip_json(*args):
    res = run(["ip", "-j"] + list(args), what="ip " + " ".join(args))
    return json.loads(res.stdout or "[]")


def links():
    return {link["ifname"]: link for link in ip_json("link", "show")}


def netns_exists(name):
    return os.path.exists(os.path.join("/run/netns", name))


def check_free(network=NETWORK, bridge=BRIDGE):
    """Refuse a lab network that overlaps an address or route the machine already uses elsewhere."""
    for link in ip_json("addr", "show"):
        if link["ifname"] == bridge:
            continue
        for a in link.get("addr_info", []):
            if a.get("family") != "inet":
                continue
            if ipaddress.ip_network("%s/%s" % (a["local"], a["prefixlen"]), strict=False).overlaps(network):
                raise LabError("lab network %s overlaps address %s/%s on %s: set lab_network in "
                               "inventories/lab/group_vars/all/lab.yml" % (network, a["local"], a["prefixlen"], link["ifname"]))
    for route in ip_json("route", "show"):
        dst = route.get("dst")
        if not dst or dst == "default" or route.get("dev") == bridge:
            continue
        if ipaddress.ip_network(dst if "/" in dst else dst + "/32", strict=False).overlaps(network):
            raise LabError("lab network %s overlaps route %s via %s" % (network, dst, route.get("dev")))


# ---------------------------------------------------------------- bridge

def ensure_bridge():
    rec = claim()
    have = links()
    changed = False
    if BRIDGE in have:
        if rec.get("bridge") != BRIDGE:
            raise LabError("interface %s already exists and was not created by a lab (no %s): rename lab_bridge"
                           % (BRIDGE, record_path()))
    else:
        check_free()
        run(["ip", "link", "add", BRIDGE, "type", "bridge"], what="creating bridge " + BRIDGE)
        rec["bridge"] = BRIDGE
        save_record(rec)
        changed = True
    addrs = {a["local"] for link in ip_json("addr", "show", "dev", BRIDGE) for a in link.get("addr_info", [])
             if a.get("family") == "inet"}
    # the controller's address first: it is the bridge's primary address, the source of what the controller sends
    for addr in (CONTROLLER, INFRA):
        if addr not in addrs:
            run(["ip", "addr", "add", "%s/%d" % (addr, NETWORK.prefixlen), "dev", BRIDGE], what="address %s" % addr)
            remember("addresses", addr)
            changed = True
    mac = stable_mac(CONTROLLER)
    if have.get(BRIDGE, {}).get("address") != mac:
        run(["ip", "link", "set", BRIDGE, "address", mac], what="bridge MAC address")
        changed = True
    if have.get(BRIDGE, {}).get("operstate") != "UP":
        run(["ip", "link", "set", BRIDGE, "up"], what="bridge up")
    return clear_faults(rec) or changed


def stable_mac(address):
    """A locally administered MAC derived from an address: a host keeps its NIC's address across reboots, and the
    bridge keeps its own while ports come and go (a bridge otherwise takes its lowest port's MAC, so killing a host
    changed the controller's and infrastructure's MAC under every other host's ARP cache: seconds of lost packets)."""
    return "02:6d:6c:%02x:%02x:%02x" % tuple(ipaddress.ip_address(address).packed[1:])


def clear_faults(rec):
    """`up` brings a healthy lab: drop the fault table a killed test run (or another checkout's lab) left behind."""
    if not rec.get("nft"):
        return False
    left = run(["nft", "list", "table", "bridge", NFT_TABLE], check=False).stdout or ""
    run(["nft", "delete", "table", "bridge", NFT_TABLE], check=False)
    rec["nft"] = False
    save_record(rec)
    try:
        os.remove(faults_file())
    except FileNotFoundError:
        pass
    if " drop" in left:
        log("healed the faults left in place (%d drop rules)" % left.count(" drop"))
        return True
    return False


# ---------------------------------------------------------------- one namespace per host

def create_netns(host, address):
    """A fresh network namespace for a booting host: its veth on the bridge, its address, lo; no default route
    (nothing is routed off the machine). An existing namespace of this lab is replaced (a reboot's clean network)."""
    ns, veth = netns_name(host), veth_name(host)
    rec = claim()
    if netns_exists(ns):
        if ns not in rec["netns"]:
            raise LabError("%s: network namespace %s already exists and is not this lab's" % (host, ns))
        delete_netns(host)
    if veth in links():
        if veth not in rec["veths"]:
            raise LabError("%s: interface %s already exists and is not this lab's" % (host, veth))
        run(["ip", "link", "del", veth], check=False)
    if ipaddress.ip_address(address) not in NETWORK:
        raise LabError("%s: address %s is outside the lab network %s" % (host, address, NETWORK))
    remember("netns", ns)
    remember("veths", veth)
    run(["ip", "netns", "add", ns], what="%s: ip netns add" % host)
    run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns, "address", stable_mac(address)],
        what="%s: veth" % host)
    run(["ip", "link", "set", veth, "master", BRIDGE, "up"], what="%s: veth on the bridge" % host)
    run(["ip", "-n", ns, "addr", "add", "%s/%d" % (address, NETWORK.prefixlen), "dev", "eth0"], what="%s: address" % host)
    run(["ip", "-n", ns, "link", "set", "eth0", "up"], what="%s: eth0 up" % host)
    run(["ip", "-n", ns, "link", "set", "lo", "up"], what="%s: lo up" % host)
    # containers on the host's engine reach the bridge through it (the engine's network NATs them)
    run(["nsenter", "--net=/run/netns/" + ns, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"],
        what="%s: ip_forward" % host)


def delete_netns(host):
    ns, veth = netns_name(host), veth_name(host)
    rec = load_record() or {}
    if ns in rec.get("netns", []) and netns_exists(ns):
        run(["ip", "netns", "del", ns], check=False)
    if veth in rec.get("veths", []) and veth in links():
        run(["ip", "link", "del", veth], check=False)


def teardown():
    """Remove every namespace, interface, address and rule the record names; nothing else."""
    rec = load_record()
    if not rec:
        return
    if rec.get("lab_dir") != LAB:
        alive = [p for p in rec.get("pids", []) if pid_alive(p)]
        if alive:
            log("the lab network %s belongs to the lab in %s (up): left alone" % (BRIDGE, rec.get("lab_dir")))
            return
    for ns in rec.get("netns", []):
        if netns_exists(ns):
            run(["ip", "netns", "del", ns], check=False)
    have = links()
    for veth in rec.get("veths", []):
        if veth in have:
            run(["ip", "link", "del", veth], check=False)
    if rec.get("nft"):
        run(["nft", "delete", "table", "bridge", NFT_TABLE], check=False)
    if rec.get("bridge") and rec["bridge"] in have:
        run(["ip", "link", "del", rec["bridge"]], check=False)
    os.unlink(record_path())
    log("removed the lab network (%s, %d namespaces)" % (BRIDGE, len(rec.get("netns", []))))


# ---------------------------------------------------------------- faults

def faults_file():
    return os.path.join(LAB, "run", "faults.json")


def load_faults():
    try:
        with open(faults_file()) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"cuts": []}


def resolve(name, hosts):
    if name in SPECIAL:
        return SPECIAL[name]
    if name in hosts:
        return hosts[name]["address"]
    raise LabError("unknown fault endpoint %r: use an inventory host (%s), controller or infra"
                   % (name, ", ".join(sorted(hosts))))


def apply_faults(faults, hosts):
    """Write the whole fault table at once (one nft transaction): every cut drops both directions."""
    lines = ["table bridge %s {}" % NFT_TABLE, "delete table bridge %s" % NFT_TABLE, "table bridge %s {" % NFT_TABLE]
    rules = []
    for a, b in faults["cuts"]:
        ra, rb = resolve(a, hosts), resolve(b, hosts)
        rules.append("ip saddr %s ip daddr %s drop" % (ra, rb))
        rules.append("ip saddr %s ip daddr %s drop" % (rb, ra))
    for hook in ("forward", "input", "output"):
        lines.append("  chain c%s {" % hook)
        lines.append("    type filter hook %s priority -200; policy accept;" % hook)
        # ARP stays up: a cut host is there but does not answer (packets vanish), like a partition
        lines.extend("    " + r for r in rules)
        lines.append("  }")
    lines.append("}")
    proc = subprocess.run(["nft", "-f", "-"], input="\n".join(lines) + "\n", text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise LabError("nft rejected the fault table: %s" % proc.stdout.strip().splitlines()[-1:])
    rec = claim()
    rec["nft"] = True
    save_record(rec)
    os.makedirs(os.path.dirname(faults_file()), exist_ok=True)
    with open(faults_file(), "w") as f:
        json.dump(faults, f, indent=1)


def cut(a, b, hosts):
    faults = load_faults()
    if a == b:
        raise LabError("cannot cut %s off from itself" % a)
    pair = sorted([a, b])
    if pair not in faults["cuts"]:
        faults["cuts"].append(pair)
    apply_faults(faults, hosts)
    return faults


def isolate(host, hosts):
    """Cut `host` off from every other host, the controller and the infrastructure."""
    faults = load_faults()
    for other in list(hosts) + list(SPECIAL):
        if other != host:
            pair = sorted([host, other])
            if pair not in faults["cuts"]:
                faults["cuts"].append(pair)
    apply_faults(faults, hosts)
    return faults


def heal(hosts, host=None):
    faults = load_faults()
    faults["cuts"] = [c for c in faults["cuts"] if host is not None and host not in c]
    apply_faults(faults, hosts)
    return faults


def netem_available():
    """tc netem needs the sch_netem kernel module, which some kernels (this sandbox's) do not have."""
    res = subprocess.run(["tc", "qdisc", "add", "dev", BRIDGE, "root", "netem", "delay", "1ms"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if res.returncode == 0:
        subprocess.run(["tc", "qdisc", "del", "dev", BRIDGE, "root"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return True, ""
    return False, res.stdout.strip()


def delay(host, ms):
    """Add `ms` of latency to every packet sent to `host` (0 removes it)."""
    ok, why = netem_available()
    if not ok:
        raise LabError("tc netem is not available on this machine (%s)" % why)
    veth = veth_name(host)
    if int(ms) <= 0:
        run(["tc", "qdisc", "del", "dev", veth, "root"], check=False)
        return
    run(["tc", "qdisc", "replace", "dev", veth, "root", "netem", "delay", "%dms" % int(ms)], what="tc netem on " + veth)
