"""The platform's container images, built offline with the controller's Podman CLI and pushed to the lab registry.

A debootstrapped Debian bookworm + python3 base (cached as a tarball and as an image), a runtime with the
Python packages, then service images per service x version (with the behaviours the tests need) and a
migrations image per version. The hosts pull them from the registry like production hosts would.
"""
import hashlib
import os
import shutil
import subprocess
import urllib.error
import urllib.request

from .common import CFG, ROOT, VENV, LabError, log, path, run, source_hash

BASE_IMAGE = "localhost/mcp-lab-base:bookworm"
RUNTIME_IMAGE = "localhost/mcp-lab-runtime:bookworm"
LAB_LABEL = "io.mcp-platform.lab=true"
BEHAVIOURS = {"1.0.0": "healthy", "1.1.0": "healthy", "1.2.0": "unhealthy", "1.3.0": "degrade-after:20"}


def registry_address():
    return "%s:%d" % (CFG["lab_infra_address"], CFG["lab_registry_port"])


def podman_env():
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = path("podman", "containers.conf")
    env["CONTAINERS_REGISTRIES_CONF"] = path("podman", "registries.conf")
    return env


def podman(*args, check=True, what=None):
    return run(["podman"] + list(args), check=check, env=podman_env(), what=what or "podman " + args[0])


def configure():
    """The controller's Podman (builds only): runc (crun cannot set rlimits here) and the lab registry."""
    from .common import write_if_changed
    os.makedirs(path("podman"), exist_ok=True)
    write_if_changed(path("podman", "containers.conf"),
                     '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n')
    write_if_changed(path("podman", "registries.conf"),
                     '[[registry]]\nlocation = "%s"\ninsecure = true\n' % registry_address())


def image_label(ref, label):
    res = podman("image", "inspect", "--format", "{{ index .Labels \"%s\" }}" % label, ref, check=False)
    return res.stdout.strip() if res.returncode == 0 else None


def debian_mirror():
    src = "/etc/apt/sources.list.d/debian.sources"
    if os.path.exists(src):
        for line in open(src):
            if line.startswith("URIs:"):
                return line.split()[1]
    return "http://deb.debian.org/debian"


def base_tarball():
    """The debootstrapped root filesystem as a tarball: from the cache, the base image, or debootstrap."""
    tarball = path("cache", "mcp-lab-base.tar")
    if os.path.exists(tarball):
        return tarball
    os.makedirs(path("cache"), exist_ok=True)
    if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        cid = podman("create", BASE_IMAGE, "true").stdout.strip().splitlines()[-1]
        try:
            podman("export", "-o", tarball + ".tmp", cid, what="podman export of the base image")
        finally:
            podman("rm", "-f", cid, check=False)
        os.replace(tarball + ".tmp", tarball)
        return tarball
    rootfs = path("cache", "rootfs")
    shutil.rmtree(rootfs, ignore_errors=True)
    log("debootstrap Debian bookworm minbase + python3 (about 40 s, cached afterwards)")
    run(["debootstrap", "--variant=minbase", "--include=python3,ca-certificates", "bookworm", rootfs, debian_mirror()],
        what="debootstrap of the base image", timeout=900)
    run(["tar", "-C", rootfs, "-cf", tarball + ".tmp", "."], what="tar of the base rootfs")
    os.replace(tarball + ".tmp", tarball)
    shutil.rmtree(rootfs, ignore_errors=True)
    return tarball


def ensure_base_image():
    if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return False
    with open(base_tarball(), "rb") as f:
        res = subprocess.run(["podman", "import", "--change", 'CMD ["sleep","infinity"]', "-", BASE_IMAGE], stdin=f,
                             env=podman_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if res.returncode != 0:
        raise LabError("podman import of the base image failed: " + res.stdout.strip().splitlines()[-1])
    return True


def pydeps():
    """Python packages for the images, installed on the controller (same Python 3.11 as bookworm)."""
    target = path("build", "pydeps")
    stamp = os.path.join(target, ".stamp")
    want = "mcp==2.3.0 psycopg2-binary==2.9.13"
    if os.path.exists(stamp) and open(stamp).read() == want:
        return target
    shutil.rmtree(target, ignore_errors=True)
    log("pip install --target for the images: " + want)
    run([os.path.join(VENV, "bin", "pip"), "install", "-q", "--no-compile", "--target", target] + want.split(),
        what="pip install of the image dependencies")
    with open(stamp, "w") as f:
        f.write(want)
    return target


def registry_has(repo, tag):
    url = "http://%s/v2/%s/manifests/%s" % (registry_address(), repo, tag)
    req = urllib.request.Request(url, method="HEAD", headers={
        "Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status == 200
    except urllib.error.HTTPError:
        return False


def build_runtime():
    """Base + Python packages, built once; every lab image starts from it (seconds per image after)."""
    deps = pydeps()
    stamp = open(os.path.join(deps, ".stamp")).read()
    digest = hashlib.sha256((stamp + source_hash(os.path.join(ROOT, "lab", "images", "runtime"))).encode()).hexdigest()[:16]
    if image_label(RUNTIME_IMAGE, "io.mcp-platform.lab.src") == digest:
        return False
    ctx = path("build", "ctx-runtime")
    shutil.rmtree(ctx, ignore_errors=True)
    shutil.copytree(os.path.join(ROOT, "lab", "images", "runtime"), ctx)
    shutil.copytree(deps, os.path.join(ctx, "pydeps"), symlinks=True)
    podman("build", "--format", "docker", "-q", "-t", RUNTIME_IMAGE, "--label", "io.mcp-platform.lab.src=" + digest,
           "--label", LAB_LABEL, "-f", os.path.join(ctx, "Containerfile"), ctx, what="image build of the lab runtime")
    shutil.rmtree(ctx, ignore_errors=True)
    log("built %s" % RUNTIME_IMAGE)
    return True


def build_images():
    """Service images per service x version, a broken-mcp variant, and a migrations image per version."""
    configure()
    changed = ensure_base_image()
    changed |= build_runtime()
    runtime_id = podman("image", "inspect", "--format", "{{.Id}}", RUNTIME_IMAGE).stdout.strip()[:12]
    images_dir = os.path.join(ROOT, "lab", "images")
    jobs = []
    for svc in CFG["lab_services"]:
        for ver in CFG["lab_versions"]:
            jobs.append(("service", svc, ver, BEHAVIOURS.get(ver, "healthy")))
        jobs.append(("service", svc, "0.9.0-broken-mcp", "broken-mcp"))
    for ver in CFG["lab_versions"]:
        jobs.append(("migrations", "migrations", ver, ""))
    for kind, name, ver, behaviour in jobs:
        ctx = os.path.join(images_dir, kind)
        digest = "%s-%s-%s-%s-%s" % (source_hash(ctx), runtime_id, name, ver, behaviour)
        local = "localhost/mcp-platform/%s:%s" % (name, ver)
        remote = "%s/mcp-platform/%s:%s" % (registry_address(), name, ver)
        built = False
        if image_label(local, "io.mcp-platform.lab.src") != digest:
            # --no-cache: Podman 4.3's layer cache ignores --build-arg values, and every service and version
            # would come out as the first one built (same labels, same MCP_VERSION)
            args = ["build", "--no-cache", "--format", "docker", "-q", "-t", local, "--label", "io.mcp-platform.lab.src=" + digest,
                    "--label", LAB_LABEL, "--build-arg", "VERSION=" + ver]
            if kind == "service":
                args += ["--build-arg", "SERVICE=" + name, "--build-arg", "BEHAVIOUR=" + behaviour]
            podman(*(args + ["-f", os.path.join(ctx, "Containerfile"), ctx]), what="image build of %s:%s" % (name, ver))
            if kind == "service" and (image_label(local, "io.mcp-platform.service"), image_label(local, "io.mcp-platform.version")) != (name, ver):
                raise LabError("image build of %s:%s produced an image labelled %s:%s" % (
                    name, ver, image_label(local, "io.mcp-platform.service"), image_label(local, "io.mcp-platform.version")))
            built = changed = True
            log("built %s" % local)
        if built or not registry_has("mcp-platform/" + name, ver):
            podman("tag", local, remote)
            podman("push", "-q", "--tls-verify=false", remote, what="push of " + remote)
            changed = True
    return changed


def remove_stale_containers():
    """The lab before real hosts ran its containers on the controller's engine: remove any it left behind."""
    if not os.path.exists(path("podman", "containers.conf")):
        configure()
    res = podman("ps", "-a", "--filter", "label=" + LAB_LABEL, "--format", "{{.ID}}", check=False)
    ids = [line for line in res.stdout.split() if line]
    if ids:
        podman("rm", "--force", "--time", "0", *ids, check=False)
        log("removed %d lab containers from the controller's engine" % len(ids))
    return bool(ids)


def remove_images():
    res = podman("images", "--filter", "label=" + LAB_LABEL, "--format", "{{.ID}}", check=False)
    ids = sorted(set(res.stdout.split()))
    if ids:
        podman("rmi", "--force", *ids, check=False)
