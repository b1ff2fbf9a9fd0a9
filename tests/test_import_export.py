"""Import and export against the real OCI/Docker world (issue 3).

The round trips the issue asks for, each proven with the real peer tools:

* podman builds a three-layer image (a file deleted, a directory replaced by a file),
  ``podman save`` -> ``lg import``: one commit per history entry, messages and count as
  ``podman history``, ``lg diff`` between commits is what each layer did;
  ``lg export --format docker-archive`` -> ``podman load`` -> ``podman run`` works and the
  rootfs podman has is the same, entry by entry, as ``lg checkout``;
* the same through OCI: ``lg export --format oci`` read by ``skopeo`` and unpacked by
  ``umoci``, and an OCI layout written by ``skopeo`` imported by lg;
* a rootfs tarball made by GNU tar (devices, hardlinks, xattrs, odd modes, nanosecond
  mtimes) -> ``lg import`` -> ``lg export --format rootfs`` gives the same members with the
  same metadata, and ``lg checkout`` equals the source tree;
* input detection (gzip, xz, zstd, plain, stdin), tags, config.json, and deterministic ids.

Tests that drive podman, skopeo or umoci, create device nodes or need trusted.* xattrs
are marked ``root``. Podman objects get unique names and are removed in fixture
teardown, also when a test fails.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import uuid

import pytest

from fixtures import archives as A

from .treecompare import describe, differences
from .trees import root_mode

# -- helpers ------------------------------------------------------------------------


def run(*args, input: bytes | None = None, **kw) -> str:
    proc = subprocess.run([str(a) for a in args], input=input, capture_output=True, **kw)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr.decode(errors='replace')}")
    return proc.stdout.decode(errors="replace")


def podman(*args) -> str:
    return run("podman", *args)


def lg_json(lg, *args):
    return json.loads(lg.out(*args, "--json"))


def log_ids(lg, rev: str) -> list[str]:
    """Commit ids of ``rev``'s history, oldest first."""
    return [c["id"] for c in lg_json(lg, "log", rev)][::-1]


def name_status(lg, a: str, b: str) -> set[tuple[str, str]]:
    out = lg.out("diff", a, b, "--name-status")
    return {tuple(line.split("\t", 1)) for line in out.splitlines() if line}


def checkout(lg, rev: str, dest, like=None) -> str:
    """Check ``rev`` out into ``dest``; with the root mode of ``like`` if it is compared with that tree, root included."""
    lg("checkout", rev, str(dest), *(["--mode", root_mode(like)] if like is not None else []))
    return str(dest)


def without_root(desc: dict) -> dict:
    return {k: v for k, v in desc.items() if k != b"."}


def layer_paths(layer: bytes) -> set[str]:
    """Paths a layer tar mentions: its entries, and what its whiteouts delete."""
    out = set()
    for m in tarfile.open(fileobj=io.BytesIO(layer)):
        name = "/" + m.name.lstrip("./").rstrip("/")
        parent, _, base = name.rpartition("/")
        if base == ".wh..wh..opq":
            out.add(parent)
        elif base.startswith(".wh."):
            out.add(parent + "/" + base[4:])
        else:
            out.add(name)
    return out


def covered(path: str, mentioned: set[str]) -> bool:
    """True if ``path`` or one of its parents is mentioned (a deleted or replaced directory
    takes its contents along)."""
    while path:
        if path in mentioned:
            return True
        path = path.rpartition("/")[0]
    return False


# -- podman images --------------------------------------------------------------------


CONTAINERFILE = """\
FROM {base}
RUN rm /var/www/index.html
RUN rm -rf /home/app && echo now-a-file > /home/app && mkdir /var/www/new && echo new > /var/www/new/page.html
ENV GREETING=hello
WORKDIR /var/www
CMD ["/bin/sh"]
"""


class PodmanSession:
    """Unique names for one test's podman objects, and their removal."""

    def __init__(self, work):
        self.work = work
        self.prefix = f"localhost/lgtest-{uuid.uuid4().hex[:10]}"
        self.images: list[str] = []
        self.containers: list[str] = []
        self.mounted: list[str] = []

    def image(self, suffix: str) -> str:
        name = f"{self.prefix}-{suffix}:1"
        self.images.append(name)
        return name

    def rootfs(self, image: str) -> str:
        """The image's rootfs as podman has it: a created (never started) container, mounted."""
        cid = podman("create", "--network=none", image, "/bin/true").strip()
        self.containers.append(cid)
        path = podman("mount", cid).strip()
        self.mounted.append(cid)
        return path

    def cleanup(self) -> None:
        for cid in self.mounted:
            subprocess.run(["podman", "umount", cid], capture_output=True)
        for cid in self.containers:
            subprocess.run(["podman", "rm", "-f", cid], capture_output=True)
        for image in reversed(self.images):
            subprocess.run(["podman", "rmi", "-f", image], capture_output=True)


@pytest.fixture
def pm(tmp_path):
    session = PodmanSession(tmp_path)
    try:
        yield session
    finally:
        session.cleanup()


@pytest.fixture(scope="module")
def podman_image(tmp_path_factory, busybox_rootfs):
    """A three-layer podman image built from the busybox fixture, and its ``podman save``.

    Layer 1 is ``podman import`` of the busybox rootfs, layer 2 deletes a file, layer 3
    replaces the directory /home/app with a file and adds a directory; ENV, WORKDIR and
    CMD are empty-layer history entries. Shared by the module's podman tests (building
    takes seconds); removed in teardown whatever happens.
    """
    if os.geteuid() != 0:
        pytest.skip("needs root (podman)")
    work = tmp_path_factory.mktemp("podman")
    session = PodmanSession(work)
    try:
        rootfs_tar = work / "busybox.tar"
        run("tar", "--numeric-owner", "--xattrs", "-C", busybox_rootfs, "-cf", rootfs_tar, ".")
        base = session.image("base")
        podman("import", rootfs_tar, base)
        ctx = work / "ctx"
        ctx.mkdir()
        (ctx / "Containerfile").write_text(CONTAINERFILE.format(base=base))
        image = session.image("built")
        podman("build", "--network=none", "-q", "-t", image, str(ctx))
        save = work / "podman-save.tar"
        podman("save", "--format", "docker-archive", "-o", save, image)
        history = json.loads(podman("history", "--format", "json", image))
        yield {"image": image, "save": str(save), "history": history, "session": session, "work": work}
    finally:
        session.cleanup()


def _podman_layers(save: str) -> list[bytes]:
    with tarfile.open(save) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        return [tar.extractfile(name).read() for name in manifest[0]["Layers"]]


@pytest.mark.root
def test_podman_save_import_export_load(lg, tmp_path, pm, podman_image):
    """podman save -> lg import -> lg export docker-archive -> podman load -> podman run.

    Proves: one commit per history entry with podman's messages; each layer's
    ``lg diff --name-status`` is what the layer did (the known changes are there, and
    anything else is a path the layer tar itself carries, e.g. the /run directory
    buildah adds); the export loads and runs; and three rootfs are identical entry by
    entry, mtimes included: lg's checkout, podman's original image and the re-loaded
    export. Excluded from the comparison is only the root directory itself: podman's
    rootfs is an overlay mount point that containers/storage creates (mode 0555, its
    own mtime), not an entry of any layer.
    """
    image, history = podman_image["image"], podman_image["history"]
    result = lg_json(lg, "import", podman_image["save"])
    assert [r["tags"] for r in result] == [[image]]
    assert result[0]["layers"] == 3 and result[0]["commits"] == len(history) == 6

    log = lg_json(lg, "log", image)
    assert len(log) == len(history)
    assert [c["message"].strip() for c in log] == [h["CreatedBy"].strip() for h in history]
    ids = [c["id"] for c in log][::-1]
    shows = [lg_json(lg, "show", i) for i in ids]

    # every history entry is a commit; the empty-layer ones keep the rootfs
    assert [s["rootfs"] == p["rootfs"] for p, s in zip(shows, shows[1:], strict=False)] == [False, False, True, True, True]

    layers = _podman_layers(podman_image["save"])
    expected = [
        {("D", "/var/www/index.html")},
        {("T", "/home/app"), ("A", "/var/www/new"), ("A", "/var/www/new/page.html")},
    ]
    for (old, new), layer, want in zip(zip(ids, ids[1:3], strict=False), layers[1:], expected, strict=False):
        got = name_status(lg, old, new)
        assert want <= got, f"{old[:12]}..{new[:12]}: {sorted(got)}"
        mentioned = layer_paths(layer)
        assert all(covered(p, mentioned) for _, p in got - want), f"changes not in the layer: {sorted(got - want)}"
    for old, new in zip(ids[2:], ids[3:], strict=False):
        assert name_status(lg, old, new) == set()

    config = lg_json(lg, "show", image)["config"]
    assert "GREETING=hello" in config["Env"] and config["Cmd"] == ["/bin/sh"] and config["WorkingDir"] == "/var/www"

    co = checkout(lg, image, tmp_path / "co")
    assert open(os.path.join(co, "home", "app")).read() == "now-a-file\n"
    assert not os.path.exists(os.path.join(co, "var", "www", "index.html"))
    original = describe(pm.rootfs(image))
    mine = describe(co)
    assert not differences(without_root(mine), without_root(original)), differences(without_root(mine), without_root(original))

    # export under a new name, load it into podman, run it, compare again
    loaded = pm.image("reloaded")
    lg("tag", image, loaded)
    out = tmp_path / "export.tar"
    lg("export", loaded, "--format", "docker-archive", "-o", out)
    assert loaded in podman("load", "-i", out)
    assert podman("run", "--rm", "--network=none", loaded, "cat", "/home/app") == "now-a-file\n"
    assert podman("run", "--rm", "--network=none", loaded, "sh", "-c", "echo $GREETING; pwd") == "hello\n/var/www\n"
    again = json.loads(podman("history", "--format", "json", loaded))
    assert [h["CreatedBy"].strip() for h in again] == [h["CreatedBy"].strip() for h in history]
    reloaded = describe(pm.rootfs(loaded))
    assert not differences(without_root(mine), without_root(reloaded)), differences(without_root(mine), without_root(reloaded))


@pytest.mark.root
def test_oci_export_skopeo_and_umoci(lg, tmp_path, podman_image):
    """lg export --format oci -o DIR/ is a layout skopeo reads and copies (to an oci-archive
    that lg imports back to the same commit) and umoci unpacks into a rootfs identical to ``lg checkout``, entry by entry, mtimes and the
    root directory included (umoci applies every layer entry, the root's too)."""
    image = podman_image["image"]
    lg("import", podman_image["save"])
    tag = image.rsplit(":", 1)[1]
    layout = tmp_path / "layout"
    lg("export", image, "--format", "oci", "-o", str(layout) + "/")
    assert sorted(os.listdir(layout)) == ["blobs", "index.json", "oci-layout"]

    info = json.loads(run("skopeo", "inspect", f"oci:{layout}:{tag}"))
    assert len(info["Layers"]) == 3
    assert "GREETING=hello" in info["Env"]
    config = json.loads(run("skopeo", "inspect", "--config", f"oci:{layout}:{tag}"))
    assert [h["created_by"].strip() for h in config["history"]] == [h["CreatedBy"].strip() for h in podman_image["history"]][::-1]
    archive = tmp_path / "copy.tar"
    run("skopeo", "copy", "-q", f"oci:{layout}:{tag}", f"oci-archive:{archive}")
    assert len(json.loads(run("skopeo", "inspect", f"oci-archive:{archive}"))["Layers"]) == 3
    # skopeo recompressed the layers (new digests); the content is still exactly lg's image
    tip = lg_json(lg, "show", image)["id"]
    assert lg_json(lg, "import", archive, "-t", "via-skopeo:1")[0]["id"] == tip

    bundle = tmp_path / "bundle"
    run("umoci", "unpack", "--image", f"{layout}:{tag}", bundle)
    co = checkout(lg, image, tmp_path / "co", like=bundle / "rootfs")
    assert not differences(describe(co), describe(bundle / "rootfs")), differences(describe(co), describe(bundle / "rootfs"))


@pytest.mark.root
def test_import_oci_layout_written_by_skopeo(lg, tmp_path, podman_image):
    """skopeo's OCI layout of the podman image (gzip layers, its own manifest) imports to the very
    same commits as podman's docker-archive: layers are compared by content, not by wrapping."""
    direct = lg_json(lg, "import", podman_image["save"])[0]["id"]
    layout = tmp_path / "sk"
    run("skopeo", "copy", "-q", f"docker-archive:{podman_image['save']}", f"oci:{layout}:sktag")
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":")[1]).read_text())
    assert all("gzip" in layer["mediaType"] for layer in manifest["layers"])  # skopeo recompressed them
    via_oci = lg_json(lg, "import", str(layout), "-t", "from-skopeo:1")[0]
    assert via_oci["id"] == direct
    assert log_ids(lg, "from-skopeo:1") == log_ids(lg, podman_image["image"])


# -- rootfs tarballs: metadata fidelity -----------------------------------------------------

NS = 1_700_000_000_123_456_789


def _build_tree(root: str) -> None:
    """A tree with what a rootfs holds and plain tools tend to lose: owners, full modes,
    devices, fifos, hardlinks, xattrs (user, trusted, security.capability), symlinks,
    long and odd names, and nanosecond mtimes on everything (directories last)."""
    os.makedirs(root)
    j = lambda *p: os.path.join(root, *p)  # noqa: E731
    os.makedirs(j("etc"))
    os.makedirs(j("bin"))
    os.makedirs(j("dev"))
    os.makedirs(j("empty"))
    os.makedirs(j("tmp"))
    deep = j("deep", "a" * 60, "b" * 60, "c" * 60)
    os.makedirs(deep)
    files = {
        "etc/passwd": (b"root:x:0:0:root:/root:/bin/sh\n", 0o644, 0, 0),
        "etc/shadow": (b"root:*:19000:0:99999:7:::\n", 0o000, 0, 42),
        "bin/suid": (b"#!/bin/sh\n", 0o4755, 0, 0),
        "bin/sgid": (b"#!/bin/sh\n", 0o2711, 0, 0),
        "bin/ping": (b"\x7fELF fake ping\n", 0o755, 0, 0),
        "home-file": (b"owned by someone odd\n", 0o640, 123456, 654321),
        "with space and\nnewline": (b"odd name\n", 0o644, 0, 0),
        "deep/" + "a" * 60 + "/" + "b" * 60 + "/" + "c" * 60 + "/long-" + "d" * 80: (b"long path\n", 0o644, 0, 0),
        "big.bin": (bytes(range(256)) * 4096, 0o600, 1000, 1000),
    }
    for name, (data, mode, uid, gid) in files.items():
        with open(j(name), "wb") as f:
            f.write(data)
        os.chown(j(name), uid, gid)
        os.chmod(j(name), mode)
    os.link(j("etc/passwd"), j("etc/passwd-hardlink"))
    os.link(j("etc/passwd"), j("bin/passwd-elsewhere"))
    os.symlink("../etc/passwd", j("bin/rel-link"))
    os.symlink("/etc/passwd", j("abs-link"))
    os.symlink("/nonexistent/dangling", j("dangling"))
    os.lchown(j("abs-link"), 1000, 1000)
    os.mknod(j("dev/null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(j("dev/sda1"), 0o660 | stat.S_IFBLK, os.makedev(8, 1))
    os.mkfifo(j("dev/initctl"), 0o600)
    os.chmod(j("tmp"), 0o1777)
    os.chmod(j("empty"), 0o700)
    os.chown(j("empty"), 1000, 1000)
    os.setxattr(j("etc/passwd"), "user.comment", b"hello xattr")
    os.setxattr(j("etc/passwd"), "trusted.overlay.test", b"\x00\x01binary\xff")
    # VFS_CAP_REVISION_2 with CAP_NET_RAW permitted and effective
    os.setxattr(j("bin/ping"), "security.capability", b"\x01\x00\x00\x02" + (1 << 13).to_bytes(4, "little") + b"\x00" * 12)
    os.setxattr(j("empty"), "user.dir", b"on a directory")
    # mtimes last, deepest first, so creating children does not change them again
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        paths += [os.path.join(dirpath, n) for n in dirnames + filenames]
    for i, p in enumerate(sorted(paths, key=lambda p: -p.count("/"))):
        os.utime(p, ns=(NS, NS + i * 1_000_001), follow_symlinks=False)
    os.utime(root, ns=(NS, NS - 7))


def _members(data: bytes) -> dict[str, tuple]:
    """{name: facts} for a tar, names normalised ("./x/" -> "x", the root "."), hardlinks
    reduced to their leader's facts plus the group of names sharing it, so which name a
    tool picks as leader does not matter."""
    tar = tarfile.open(fileobj=io.BytesIO(data))
    members = {}
    for m in tar:
        name = m.name
        while name.startswith("./"):
            name = name[2:]
        name = name.rstrip("/") or "."
        members[name] = m
    facts, leaders = {}, {}
    for name, m in members.items():
        if m.islnk():
            link = m.linkname
            while link.startswith("./"):
                link = link[2:]
            leaders[name] = link
            continue
        mtime = m.pax_headers.get("mtime")
        mtime_ns = int(mtime.replace(".", "").ljust(len(mtime.split(".")[0]) + 9, "0")) if mtime and "." in mtime else int(m.mtime) * 10**9
        xattrs = tuple(sorted((k, v) for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")))
        content = hashlib.sha256(tar.extractfile(m).read()).hexdigest() if m.isfile() else None
        kind = tarfile.REGTYPE if m.type == tarfile.AREGTYPE else m.type
        dev = (m.devmajor, m.devminor) if m.ischr() or m.isblk() else None
        facts[name] = (kind, oct(m.mode), m.uid, m.gid, mtime_ns, m.size, content, m.linkname if m.issym() else "", dev, xattrs)
    groups: dict[str, list] = {}
    for name, leader in leaders.items():
        groups.setdefault(leader, [leader]).append(name)
    out = {}
    for name in list(facts) + list(leaders):
        leader = leaders.get(name, name)
        out[name] = facts[leader] + (tuple(sorted(groups.get(leader, [name]))),)
    return out


@pytest.mark.root
def test_rootfs_tarball_round_trip(lg, tmp_path):
    """GNU tar (pax, numeric owners, all xattrs) -> lg import -> lg export --format rootfs gives
    the same members with the same metadata (type, mode, owner, mtime to the nanosecond, size,
    content, link target, device numbers, xattrs, hardlink groups); ``lg checkout`` equals the
    source tree entry by entry."""
    src = str(tmp_path / "src")
    _build_tree(src)
    source_tar = tmp_path / "src.tar"
    run("tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--format=pax", "--sort=name", "-C", src, "-cpf", source_tar, ".")
    lg("import", source_tar, "-t", "fidelity:1")
    out = tmp_path / "export.tar"
    lg("export", "fidelity:1", "--format", "rootfs", "-o", out)
    want, got = _members(source_tar.read_bytes()), _members(out.read_bytes())
    diffs = [f"{n!r}: {want.get(n)} != {got.get(n)}" for n in sorted(set(want) | set(got)) if want.get(n) != got.get(n)]
    assert not diffs, "exported members differ:\n" + "\n".join(diffs[:20])
    co = checkout(lg, "fidelity:1", tmp_path / "co", like=src)
    assert not differences(describe(src), describe(co)), differences(describe(src), describe(co))


def test_export_rootfs_to_stdout(lg, tmp_path):
    """``-o -`` writes the rootfs tar to a pipe; it is the same tar as with ``-o FILE``."""
    lg("import", A.docker_archive(A.three_layers(), repo_tags=["demo:1"]).write_tar(tmp_path / "d.tar"))
    piped = lg("export", "demo:1", "--format", "rootfs", "-o", "-").stdout
    lg("export", "demo:1", "--format", "rootfs", "-o", tmp_path / "f.tar")
    assert piped == (tmp_path / "f.tar").read_bytes()
    assert "srv/www/app.py" in tarfile.open(fileobj=io.BytesIO(piped)).getnames()


# -- input detection, tags, config -------------------------------------------------------


def _small_rootfs() -> bytes:
    return A.layer_tar([A.directory("etc"), A.file("etc/hostname", b"box\n"), A.file("bin/tool", b"#!/bin/sh\n", mode=0o755), A.symlink("sbin", "bin")])


@pytest.mark.parametrize("tool", [None, "gzip", "xz", "zstd"])
def test_compression_detected_by_content(lg, tmp_path, tool):
    """gzip, xz, zstd (compressed by the real tools) and plain tar are detected from the bytes,
    not the file name: all give the same rootfs."""
    plain = tmp_path / "rootfs.tar"
    plain.write_bytes(_small_rootfs())
    path = tmp_path / "no-extension"
    if tool is None:
        shutil.copy(plain, path)
    else:
        path.write_bytes(subprocess.run([tool, "-c", str(plain)], check=True, capture_output=True).stdout)
    lg("import", plain, "-t", "ref:1")
    lg("import", path, "-t", "probe:1")
    assert lg_json(lg, "show", "probe:1")["rootfs"] == lg_json(lg, "show", "ref:1")["rootfs"]


@pytest.mark.parametrize("kind", ["rootfs", "docker-archive", "docker-archive-gzip", "oci-tar"])
def test_import_from_stdin(lg, tmp_path, kind):
    """``lg import -`` reads stdin (a pipe: not seekable) and gives what the file gives."""
    if kind == "rootfs":
        data, args = _small_rootfs(), ["-t", "x:1"]
    elif kind == "oci-tar":
        data, args = A.oci_layout(A.three_layers()).tar(), ["-t", "x:1"]
    else:
        data, args = A.docker_archive(A.three_layers(), repo_tags=["x:1"]).tar(), []
        if kind.endswith("gzip"):
            data = A.compress(data, "gzip")
    path = tmp_path / "archive"
    path.write_bytes(data)
    lg("import", path, *args)
    from_file = lg_json(lg, "show", "x:1")
    proc = subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE)
    try:
        lg("import", "-", "-t", "y:1", stdin=proc.stdout)
    finally:
        proc.stdout.close()
        proc.wait()
    from_stdin = lg_json(lg, "show", "y:1")
    assert from_stdin["rootfs"] == from_file["rootfs"]
    if kind != "rootfs":
        assert from_stdin["id"] == from_file["id"]
    assert not os.listdir(os.path.join(lg.root, "tmp")), "the stdin spool was left behind"


def test_repo_tags_become_tags_and_t_overrides(lg, tmp_path):
    """Every RepoTag of a docker-archive becomes a tag on the same commit; ``-t`` replaces them."""
    path = A.docker_archive(A.three_layers(), repo_tags=["demo/a:1", "localhost:5000/team/b:two"]).write_tar(tmp_path / "d.tar")
    result = lg_json(lg, "import", path)
    assert sorted(result[0]["tags"]) == ["demo/a:1", "localhost:5000/team/b:two"]
    images = {(i["name"], i["tag"]): i["id"] for i in lg_json(lg, "images")}
    assert images == {("demo/a", "1"): result[0]["id"], ("localhost:5000/team/b", "two"): result[0]["id"]}

    other = type(lg)(str(tmp_path / "other-root"))
    result = lg_json(other, "import", path, "-t", "mine:9")
    assert result[0]["tags"] == ["mine:9"]
    assert [(i["name"], i["tag"]) for i in lg_json(other, "images")] == [("mine", "9")]


def test_oci_export_import_keeps_the_image_name(lg, tmp_path):
    """An OCI layout lg exports for ``demo/app:v1`` imports back as ``demo/app:v1``.

    lg's exporter writes the tag alone in ``org.opencontainers.image.ref.name`` (as
    skopeo does) and the full name in ``io.containerd.image.name``; reading the tag
    alone as a name would invent an image called ``v1:latest``.
    """
    lg("import", A.docker_archive(A.three_layers(), repo_tags=["demo/app:v1"]).write_tar(tmp_path / "d.tar"))
    lg("export", "demo/app:v1", "--format", "oci", "-o", str(tmp_path / "layout") + "/")
    other = type(lg)(str(tmp_path / "other-root"))
    result = lg_json(other, "import", str(tmp_path / "layout"))
    assert result[0]["tags"] == ["demo/app:v1"]


def test_config_and_history(lg, tmp_path):
    """The image config's runtime fields land in config.json (``lg show --json``) with Docker's
    names; history entries give messages, authors and dates; empty_layer entries are commits
    with their parent's rootfs."""
    runtime = {
        "Cmd": ["nginx", "-g", "daemon off;"],
        "Entrypoint": ["/docker-entrypoint.sh"],
        "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "NGINX_VERSION=1.25"],
        "WorkingDir": "/srv",
        "User": "101:101",
        "ExposedPorts": {"80/tcp": {}},
        "Volumes": {"/var/cache/nginx": {}},
        "Labels": {"maintainer": "someone"},
        "StopSignal": "SIGQUIT",
    }
    hist = [
        A.history("ADD rootfs.tar /", created="2024-01-02T03:04:05Z", author="Alice <alice@example.org>"),
        A.history("ENV NGINX_VERSION=1.25", empty_layer=True, created="2024-01-02T03:04:06.123456789Z"),
        A.history("RUN rm /etc/motd", created="2024-01-02T03:04:07Z"),
        A.history("EXPOSE 80", empty_layer=True, created="2024-01-02T03:04:08Z"),
        A.history("RUN replace /srv/www", created="2024-01-02T03:04:09Z"),
        A.history("CMD [\"nginx\"]", empty_layer=True, created="2024-01-02T03:04:10Z"),
    ]
    path = A.docker_archive(A.three_layers(), runtime=runtime, hist=hist, repo_tags=["web:1"]).write_tar(tmp_path / "d.tar")
    result = lg_json(lg, "import", path)[0]
    assert (result["commits"], result["layers"]) == (6, 3)
    config = lg_json(lg, "show", "web:1")["config"]
    assert {k: config[k] for k in runtime} == runtime
    assert (config.get("Architecture"), config.get("Os")) == ("amd64", "linux")
    log = lg_json(lg, "log", "web:1")[::-1]
    assert [c["message"].strip() for c in log] == [h["created_by"] for h in hist]
    assert log[0]["author"].startswith("Alice <alice@example.org>")
    assert [c["date"][:19] for c in log] == [h["created"][:19] for h in hist]
    shows = [lg_json(lg, "show", c["id"]) for c in log]
    assert [a["rootfs"] == b["rootfs"] for a, b in zip(shows, shows[1:], strict=False)] == [True, False, True, False, True]
    ids = [c["id"] for c in log]
    assert name_status(lg, ids[1], ids[2]) == {("D", "/etc/motd")}
    assert name_status(lg, ids[3], ids[4]) == {("A", "/srv/www/app.py"), ("D", "/srv/www/index.html")}


@pytest.mark.parametrize("fmt", ["docker-archive", "oci"])
def test_imports_are_deterministic(lg, tmp_path, fmt):
    """The same archive imported twice, into the same root and into another one, gives the same
    commit ids; exporting and importing again gives them too (history carries author and date)."""
    layout = A.docker_archive(A.three_layers(), repo_tags=["det:1"]) if fmt == "docker-archive" else A.oci_layout(A.three_layers(), compression="gzip")
    path = layout.write_tar(tmp_path / "a.tar")
    args = [] if fmt == "docker-archive" else ["-t", "det:1"]
    first = lg_json(lg, "import", path, *args)[0]["id"]
    ids = log_ids(lg, "det:1")
    assert lg_json(lg, "import", path, *args)[0]["id"] == first
    other = type(lg)(str(tmp_path / "other-root"))
    assert lg_json(other, "import", path, *args)[0]["id"] == first
    assert log_ids(other, "det:1") == ids
    lg("export", "det:1", "--format", fmt, "-o", tmp_path / "again.tar")
    third = type(lg)(str(tmp_path / "third-root"))
    assert lg_json(third, "import", tmp_path / "again.tar", "-t", "det:1")[0]["id"] == first


def test_export_layers_carry_whiteouts(lg, tmp_path):
    """Exported layers are diffs: a deleted file is an OCI whiteout in its layer, a replaced
    directory's old contents are whited out too, and unchanged files are not repeated."""
    lg("import", A.docker_archive(A.three_layers(), repo_tags=["wh:1"]).write_tar(tmp_path / "d.tar"))
    out = tmp_path / "e.tar"
    lg("export", "wh:1", "-o", out)
    with tarfile.open(out) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        layers = [set(tarfile.open(fileobj=io.BytesIO(tar.extractfile(n).read())).getnames()) for n in manifest[0]["Layers"]]
    assert len(layers) == 3
    assert "etc/.wh.motd" in layers[1] and "etc/passwd" not in layers[1]
    assert "srv/www/app.py" in layers[2] and "srv/www/.wh.index.html" in layers[2]
    assert "etc/passwd" not in layers[2]


# -- materialised at import (issue 13) ----------------------------------------------------


def _farm(lg) -> set[str]:
    """Every object in the root's hardlink farm (cache/objects/XX/KEY)."""
    top = os.path.join(lg.root, "cache", "objects")
    return {os.path.join(d, f) for d, _, files in os.walk(top) for f in files}


@pytest.mark.parametrize("kind", ["rootfs", "docker-archive"])
def test_import_materialises_the_rootfs(lg, tmp_path, kind):
    """``lg import`` leaves the image's rootfs materialised, as podman unpacks at import:
    the first use (a hardlink checkout, lg run's way in) writes no farm object, and
    ``lg fsck`` finds the cached tree equal to its snapshot."""
    if kind == "rootfs":
        path, args = tmp_path / "r.tar", ["-t", "x:1"]
        path.write_bytes(_small_rootfs())
    else:
        path, args = A.docker_archive(A.three_layers(), repo_tags=["x:1"]).write_tar(tmp_path / "d.tar"), []
    lg("import", path, *args)
    rootfs = lg_json(lg, "show", "x:1")["rootfs"]
    assert os.listdir(os.path.join(lg.root, "cache", "rootfs")) == [rootfs]
    objects = _farm(lg)
    lg("checkout", "--hardlink", "x:1", tmp_path / "co")
    assert _farm(lg) == objects, "the first use wrote files the import had seen"
    assert "ok" in lg.out("fsck")


def test_a_refused_import_leaves_no_rootfs_and_gc_prunes_its_files(lg, tmp_path):
    """An archive refused half-way leaves no image and no cached rootfs; the farm objects
    of the files read before the refusal link nowhere, and ``lg gc`` removes them. (The
    first files of a deposit are written at once, not handed to the farm's writer
    process, which a failed import kills: so ``a`` and ``b`` are there.)"""
    path = tmp_path / "bad.tar"
    path.write_bytes(A.layer_tar([A.file("a", b"one\n"), A.file("b", b"two\n"), A.file("c/../../x", b"x")]))
    assert "'..'" in lg.fails("import", path, "-t", "bad:1")
    assert lg_json(lg, "images") == []
    cached = os.path.join(lg.root, "cache", "rootfs")
    assert not os.path.isdir(cached) or not os.listdir(cached)
    assert _farm(lg), "a was read, so the farm holds it (no rootfs links it)"
    lg("gc")
    assert _farm(lg) == set()


def test_a_rootfs_with_names_image_archives_use_is_still_a_rootfs(lg, tmp_path):
    """A rootfs whose top holds names image archives start with (blobs/, a 64-hex name,
    repositories) is a rootfs still: the one-pass import gives way to detection, which
    finds no manifest.json."""
    path = tmp_path / "odd.tar"
    path.write_bytes(A.layer_tar([A.file("a" * 64, b"1\n"), A.directory("blobs"), A.file("blobs/x", b"2\n"),
                                  A.file("repositories", b"3\n"), A.file("etc/hostname", b"box\n")]))
    lg("import", path, "-t", "odd:1")
    co = tmp_path / "co"
    lg("checkout", "odd:1", co)
    assert (co / ("a" * 64)).read_bytes() == b"1\n" and (co / "blobs" / "x").read_bytes() == b"2\n"
    assert (co / "repositories").read_bytes() == b"3\n"


def test_export_reads_the_farm_only_where_it_holds_the_commits_bytes(lg, tmp_path):
    """An export reads files from the farm when it has them (an imported image's), checking
    each against its blob id first: files edited in place through a ``checkout -H`` link,
    a small one and a big streamed one, the same size as before, are exported as the
    commit has them, in the rootfs tarball and in the image's layer alike."""
    small, big = b"the commit's own\n", os.urandom(1 << 20) + bytes(9 << 20) + b"end"
    path = tmp_path / "r.tar"
    path.write_bytes(A.layer_tar([A.directory("data"), A.file("data/small", small), A.file("data/big", big)]))
    lg("import", path, "-t", "farm:1")
    co = tmp_path / "co"
    lg("checkout", "-H", "farm:1", co)
    for name, data in [("small", small), ("big", big)]:
        assert os.stat(co / "data" / name).st_nlink > 1, "linked into the farm"
        with open(co / "data" / name, "r+b") as f:
            f.seek(len(data) // 2)
            f.write(b"EDITED")
    lg("export", "farm:1", "--format", "rootfs", "-o", tmp_path / "rootfs.tar")
    lg("export", "farm:1", "--format", "docker-archive", "-o", tmp_path / "image.tar")
    with tarfile.open(tmp_path / "image.tar") as tar:
        layer = tar.extractfile(json.load(tar.extractfile("manifest.json"))[0]["Layers"][0]).read()
    for tar in [tarfile.open(tmp_path / "rootfs.tar"), tarfile.open(fileobj=io.BytesIO(layer))]:
        with tar:
            assert tar.extractfile("data/small").read() == small
            assert tar.extractfile("data/big").read() == big
