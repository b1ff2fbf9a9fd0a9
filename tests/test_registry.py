"""lg pull / lg push against Debian's docker-registry on loopback (issue 15).

Real peers only: the registry (distribution 2.8) started per module with its own
storage and port, one with htpasswd auth; skopeo as an independent reader and writer,
podman (root) pulling and running what lg pushed and pushing what lg pulls. Hostile
registries are played by changing the registry's stored blobs, and by a small server
in this file for what distribution never does (429, hanging, a lying manifest).
"""

from __future__ import annotations

import base64
import glob
import gzip
import hashlib
import http.server
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from fixtures.registry import start_registry

from .conftest import Lg, cleanup_root
from .test_import_export import PodmanSession, podman, podman_image, run


class RegLg(Lg):
    """lg with the test's own auth file and runtime dir: the host's are never read or written."""

    def __init__(self, root: str, home: str):
        super().__init__(root)
        self.home = home

    def env(self, **extra) -> dict:
        return super().env(REGISTRY_AUTH_FILE=os.path.join(self.home, "auth.json"),
                           XDG_RUNTIME_DIR=self.home, HOME=self.home, **extra)


@pytest.fixture
def rlg(tmp_path):
    runner = RegLg(str(tmp_path / "lgroot"), str(tmp_path))
    yield runner
    cleanup_root(runner)


@pytest.fixture
def rlg2(tmp_path):
    runner = RegLg(str(tmp_path / "lgroot2"), str(tmp_path))
    yield runner
    cleanup_root(runner)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = start_registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory):
    reg = start_registry(tmp_path_factory.mktemp("auth-registry"), users={"alice": "s3cret"})
    yield reg
    reg.stop()


def api(reg, path: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    req = urllib.request.Request(f"http://{reg.host}{path}", data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.read(), dict(resp.headers)


def manifest(reg, repo: str, ref: str) -> dict:
    accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
    return json.loads(api(reg, f"/v2/{repo}/manifests/{ref}", headers={"Accept": accept})[1])


def log_ids(lg, rev: str) -> list[str]:
    return [c["id"] for c in json.loads(lg.out("log", rev, "--json"))]


def make_image(lg, busybox_copy: str, name: str) -> str:
    """Four commits: the busybox rootfs, ENV and USER (config only), a layer deleting a file."""
    lg("commit", busybox_copy, "-t", name, "-m", "base\n\nwith a body", "--author", "Ann <ann@example.org>")
    context = os.path.join(os.path.dirname(busybox_copy), "context")
    os.makedirs(context, exist_ok=True)
    with open(os.path.join(context, "Dockerfile"), "w") as f:
        f.write(f"FROM {name}\nENV GREETING=hello\nUSER nobody\n")
    lg("build", "-q", "-t", name, context)
    os.unlink(os.path.join(busybox_copy, "bin", "ls"))
    with open(os.path.join(busybox_copy, "added"), "w") as f:
        f.write("added\n")
    lg("commit", busybox_copy, "-t", name, "-m", "third")
    return log_ids(lg, name)[0]


def push(lg, ref: str, *args) -> dict:
    return json.loads(lg.out("push", ref, "--json", *args))


def pull(lg, ref: str, *args) -> dict:
    [result] = json.loads(lg.out("pull", ref, "--json", *args))
    return result


def test_push_pull_round_trip_keeps_commit_ids(rlg, rlg2, registry, busybox_copy):
    name = f"{registry.host}/team/app:1"
    tip = make_image(rlg, busybox_copy, name)
    pushed = push(rlg, name)
    assert pushed["id"] == tip and pushed["uploaded"] == 3 and pushed["skipped"] == 0  # 2 layers + config
    m = manifest(registry, "team/app", "1")
    assert m["annotations"]["org.opencontainers.image.revision"] == tip
    assert [x["mediaType"] for x in m["layers"]] == ["application/vnd.oci.image.layer.v1.tar+gzip"] * 2
    pulled = pull(rlg2, name)
    assert pulled["id"] == tip and pulled["rebuilt"] and pulled["commits"] == 4
    assert log_ids(rlg2, name) == log_ids(rlg, name)
    # the digest leads back to the commit on both sides, and inspect shows it
    for side in (rlg, rlg2):
        assert log_ids(side, f"{registry.host}/team/app@{pushed['digest']}")[0] == tip
        [info] = json.loads(side.out("inspect", name))
        assert f"{registry.host}/team/app@{pushed['digest']}" in info["RepoDigests"]
    assert pushed["digest"] in rlg.out("images", "--digests")
    # the same commit pushed again gives the same digest and uploads nothing
    again = push(rlg, name)
    assert again["digest"] == pushed["digest"] and again["uploaded"] == 0 and again["skipped"] == 3
    # a pull of what is here downloads nothing
    assert pull(rlg2, name)["downloaded"] == 0
    # the digest index forgets with the last tag, or by name
    rlg2("rmi", name)
    assert "digests" not in refs(rlg2)
    rlg("rmi", f"{registry.host}/team/app@{pushed['digest']}")
    assert "digests" not in refs(rlg) and log_ids(rlg, name)[0] == tip


def open_uploads(reg) -> list[str]:
    """Upload sessions the registry holds open: distribution keeps each in ``_uploads/ID``
    with its ``startedat`` (and its bytes in ``data``), and a cancel (DELETE) removes those
    two (its hash state stays behind until distribution's own purge)."""
    uploads = os.path.join(reg.storage, "docker", "registry", "v2", "repositories", "**", "_uploads", "*")
    return glob.glob(os.path.join(uploads, "startedat"), recursive=True) + \
        glob.glob(os.path.join(uploads, "data"), recursive=True)


def test_cold_layers_stream_and_what_is_there_is_cancelled(rlg, rlg2, registry, busybox_copy, tmp_path):
    """A layer the layer cache lacks is uploaded while it is made, unless the root's digest
    index says the registry has met a commit of the image (then it is made, checked, and
    only then sent). A streamed layer's digest is known at its end: found there, the upload
    is cancelled; refused a mount, the upload the registry opened instead is cancelled and
    the streamed one finished. No upload is left open either way."""
    name = f"{registry.host}/stream/app:1"
    tip = make_image(rlg, busybox_copy, name)
    first = push(rlg, name)
    assert first["uploaded"] == 3 and open_uploads(registry) == []
    rlg("gc")  # the layer cache emptied: the index knows the registry has them, nothing is sent
    assert (push(rlg, name)["uploaded"], open_uploads(registry)) == (0, [])
    small = tmp_path / "small"
    small.mkdir()
    (small / "f").write_text("x\n")
    unrelated = f"{registry.host}/stream/unrelated:1"
    rlg2("commit", small, "-t", unrelated)
    push(rlg2, unrelated)  # a repository the next pushes may try to mount from
    assert pull(rlg2, name)["id"] == tip
    rlg2("rmi", f"{registry.host}/stream/app@{first['digest']}")  # the index forgets it: streamed
    again = push(rlg2, name)
    assert (again["uploaded"], again["skipped"], again["digest"]) == (0, 3, first["digest"])
    assert open_uploads(registry) == []
    rlg2("rmi", f"{registry.host}/stream/app@{first['digest']}")
    rlg2("gc")  # and the layer cache forgets them: made and streamed again
    copy = f"{registry.host}/stream/copy:1"
    rlg2("tag", name, copy)
    copied = push(rlg2, copy)
    assert (copied["uploaded"], copied["mounted"], copied["digest"]) == (3, 0, first["digest"])
    assert open_uploads(registry) == []


def test_a_layer_that_fails_to_be_made_cancels_its_upload(rlg, registry, busybox_copy):
    """A store that fails while a layer is made (here a byte of its biggest file's object
    is flipped in the pack) fails the push in one line, and the upload that was following
    the layer is cancelled."""
    name = f"{registry.host}/broken/app:1"
    rlg("commit", busybox_copy, "-t", name)
    rlg("gc")  # the objects in one pack
    [idx] = glob.glob(os.path.join(rlg.root, "store.git", "objects", "pack", "pack-*.idx"))
    listing = subprocess.run(["git", "verify-pack", "-v", idx], capture_output=True, text=True).stdout
    rows = [line.split() for line in listing.splitlines() if " blob " in line]
    size, offset = max((int(r[3]), int(r[4])) for r in rows)  # in-pack size and offset of the biggest blob
    pack = idx[:-4] + ".pack"
    os.chmod(pack, 0o644)
    with open(pack, "r+b") as f:
        f.seek(offset + size // 2)
        byte = f.read(1)
        f.seek(offset + size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    err = rlg.fails("push", name)
    assert "corrupt" in err or "damaged" in err, err
    assert open_uploads(registry) == []
    with pytest.raises(urllib.error.HTTPError):  # no manifest went up
        manifest(registry, "broken/app", "1")


def test_zstd_and_mount_and_one_changed_layer(rlg, rlg2, registry, busybox_copy):
    name = f"{registry.host}/z/app:1"
    tip = make_image(rlg, busybox_copy, name)
    pushed = push(rlg, name, "--compression", "zstd")
    assert {x["mediaType"] for x in manifest(registry, "z/app", "1")["layers"]} == \
        {"application/vnd.oci.image.layer.v1.tar+zstd"}
    assert pull(rlg2, name)["id"] == tip
    # another repository of the same registry: every blob is mounted, none uploaded
    other = f"{registry.host}/z/other:1"
    rlg("tag", name, other)
    mounted = push(rlg, other, "--compression", "zstd")
    assert mounted["mounted"] == 3 and mounted["uploaded"] == 0 and mounted["digest"] == pushed["digest"]
    # one more commit: one layer and the config go up, the rest is skipped
    with open(os.path.join(busybox_copy, "more"), "w") as f:
        f.write("more\n")
    rlg("commit", busybox_copy, "-t", name, "-m", "fourth")
    grown = push(rlg, name, "--compression", "zstd")
    assert (grown["uploaded"], grown["skipped"]) == (2, 2)
    # every tag of a repository
    rlg("tag", name, f"{registry.host}/z/app:2")
    push(rlg, f"{registry.host}/z/app:2", "--compression", "zstd")
    pulled = json.loads(rlg2.out("pull", "--all-tags", f"{registry.host}/z/app", "--json"))
    assert [r["tags"] for r in pulled] == [[name], [f"{registry.host}/z/app:2"]]
    assert {r["id"] for r in pulled} == {log_ids(rlg, name)[0]}


def test_skopeo_reads_and_writes(rlg, rlg2, registry, busybox_copy, tmp_path):
    name = f"{registry.host}/sk/app:1"
    tip = make_image(rlg, busybox_copy, name)
    digest = push(rlg, name)["digest"]
    # by digest alone: no tag moves, the digest index keeps it (through gc) and names it
    by_digest = pull(rlg2, f"{registry.host}/sk/app@{digest}")
    assert by_digest["tags"] == [] and by_digest["downloaded"] > 0 and by_digest["id"] == tip
    rlg2("gc")
    assert log_ids(rlg2, f"{registry.host}/sk/app@{digest}")[0] == tip
    # skopeo, an independent reader, verifies every digest and size on its copy
    run("skopeo", "copy", "--src-tls-verify=false", f"docker://{name}", f"oci:{tmp_path}/layout:x")
    # skopeo as the writer: lg's own export, sent by skopeo, pulled by lg, same commits
    rlg("export", "--format", "oci", "-o", f"{tmp_path}/export/", name)
    run("skopeo", "copy", "--dest-tls-verify=false", f"oci:{tmp_path}/export", f"docker://{registry.host}/sk/copy:1")
    assert pull(rlg2, f"{registry.host}/sk/copy:1")["id"] == tip
    assert rlg2.out("run", "--rm", f"{registry.host}/sk/copy:1", "cat", "/added") == "added\n"


@pytest.mark.root
def test_podman_pulls_runs_and_pushes(rlg, registry, busybox_copy, podman_image):
    name = f"{registry.host}/pm/app:1"
    make_image(rlg, busybox_copy, name)
    push(rlg, name)
    session = PodmanSession(None)
    try:
        podman("pull", "--tls-verify=false", name)
        session.images.append(name)
        assert podman("run", "--rm", "--network=none", name, "sh", "-c", "cat /added; id -u; echo $GREETING") \
            == "added\n65534\nhello\n"
    finally:
        session.cleanup()
    # what podman built (whiteouts, ENV, WORKDIR, CMD) and pushed, lg pulls as podman history has it
    theirs = f"{registry.host}/pm/built:1"
    podman("push", "--tls-verify=false", podman_image["image"], f"docker://{theirs}")
    result = pull(rlg, theirs)
    assert result["commits"] == len(podman_image["history"]) and not result["rebuilt"]
    [info] = json.loads(rlg.out("inspect", theirs))
    assert "GREETING=hello" in info["Config"]["Env"] and info["Config"]["WorkingDir"] == "/var/www"
    assert rlg("run", "--rm", theirs, "test", "-e", "/var/www/index.html", check=False).returncode == 1
    assert rlg.out("run", "--rm", theirs, "cat", "/home/app") == "now-a-file\n"


def refs(lg) -> str:
    path = os.path.join(lg.root, "store.git")
    if not os.path.isdir(path):
        return ""
    return subprocess.run(["git", "-C", path, "for-each-ref"], capture_output=True, text=True).stdout


def test_login_logout_and_auth_failures(rlg, rlg2, auth_registry, busybox_copy, tmp_path):
    name = f"{auth_registry.host}/sec/app:1"
    make_image(rlg, busybox_copy, name)
    assert "authentication required" in rlg.fails("push", name, code=1)
    err = rlg.fails("login", "-u", "alice", "--password-stdin", auth_registry.host, input=b"wrong\n", code=1)
    assert "wrong credentials" in err and "wrong" not in err.replace("wrong credentials", "")
    assert not os.path.exists(tmp_path / "auth.json")
    out = rlg.out("login", "-u", "alice", "--password-stdin", auth_registry.host, input=b"s3cret\n")
    assert "s3cret" not in out
    auth = tmp_path / "auth.json"
    assert stat.S_IMODE(os.stat(auth).st_mode) == 0o600
    assert auth_registry.host in json.loads(auth.read_text())["auths"]
    push(rlg, name)
    assert pull(rlg2, name)["commits"] == 4
    rlg.out("logout", auth_registry.host)
    assert auth_registry.host not in json.loads(auth.read_text())["auths"]
    assert "not logged in" in rlg.fails("logout", auth_registry.host, code=1)
    rlg2("rmi", name)
    assert "authentication required" in rlg2.fails("pull", name, code=1)


def test_unknown_image_and_bad_references(rlg, registry):
    before = refs(rlg)
    assert "not found" in rlg.fails("pull", f"{registry.host}/nothing/here:1", code=1)
    assert refs(rlg) == before
    assert "invalid reference" in rlg.fails("pull", "UPPER/Case", code=2)
    assert "invalid reference" in rlg.fails("pull", "app@sha256:1234", code=2)
    assert "no such image" in rlg.fails("push", f"{registry.host}/not/local:1", code=1)


@pytest.mark.parametrize("which", [0, -1], ids=["first-layer-streamed", "last-layer-spooled"])
def test_lying_blobs_leave_nothing(rlg, rlg2, registry, busybox_copy, which):
    """The first layer is read straight from the registry (its stream checks digest and
    size as it ends), the later ones from spools downloaded beside it: a lie in either
    is refused and leaves nothing."""
    name = f"{registry.host}/lie/app:1"
    make_image(rlg, busybox_copy, name)
    m = manifest(registry, "lie/app", push(rlg, name)["digest"])
    assert len(m["layers"]) > 1
    layer = registry.blob_path(m["layers"][which]["digest"])
    with open(layer, "rb") as f:
        good = f.read()
    try:
        with open(layer, "wb") as f:  # same size, one byte changed
            f.write(good[:-1] + bytes([good[-1] ^ 1]))
        assert "does not match its digest" in rlg2.fails("pull", name, code=1)
        assert "refs/heads" not in refs(rlg2) and "digests" not in refs(rlg2)
        with open(layer, "wb") as f:  # cut short
            f.write(good[: len(good) // 2])
        assert "bytes, the manifest says" in rlg2.fails("pull", name, code=1)
        assert "refs/heads" not in refs(rlg2)
        assert os.listdir(os.path.join(rlg2.root, "tmp")) == []  # the spools of the parallel downloads
    finally:
        with open(layer, "wb") as f:
            f.write(good)


def test_index_platform_selection(rlg, rlg2, registry, busybox_copy):
    name = f"{registry.host}/multi/app:1"
    tip = make_image(rlg, busybox_copy, name)
    pushed = push(rlg, name)
    _, body, _ = api(registry, f"/v2/multi/app/manifests/{pushed['digest']}",
                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": pushed["digest"], "size": len(body),
         "platform": {"os": "linux", "architecture": "s390x"}}]}
    api(registry, "/v2/multi/app/manifests/idx", "PUT", json.dumps(index).encode(),
        {"Content-Type": "application/vnd.oci.image.index.v1+json"})
    err = rlg2.fails("pull", f"{registry.host}/multi/app:idx", code=1)
    assert "has no image for linux/" in err and "it has: linux/s390x" in err
    assert pull(rlg2, f"{registry.host}/multi/app:idx", "--platform", "linux/s390x")["id"] == tip


class _Hostile(http.server.BaseHTTPRequestHandler):
    """What distribution never does: rate limiting, silence, a manifest that is not the one asked for."""

    hits: dict = {}

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path
        self.hits[path] = self.hits.get(path, 0) + 1
        if path == "/v2/":
            self._send(200, b"{}")
        elif path.startswith("/v2/up/blobs/uploads/"):
            self._status(path.rsplit("/", 1)[-1])
        elif path.startswith("/v2/stall/"):
            self._stall(path)
        elif path.startswith("/v2/slow/"):
            time.sleep(3)
            self._send(200, b"{}")
        elif path.startswith("/v2/busy/") and self.hits[path] == 1:
            self.send_response(429)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path.startswith("/v2/busy/") or path.startswith("/v2/always/"):
            self.send_response(429 if "always" in path else 404)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path.startswith("/v2/lie/app/manifests/sha256:"):
            self._send(200, b'{"schemaVersion":2,"config":{},"layers":[]}')
        else:
            self._send(404, b'{"errors":[{"code":"NOT_FOUND","message":"\\u001b[31mred"}]}')

    # A registry that drops the connection in the middle of the first PATCH of each
    # upload, having kept half of it: the client must ask (GET) and resume from there.
    uploads: dict = {}
    dropped: set = set()
    blobs: dict = {}

    def do_HEAD(self):
        digest = self.path.rsplit("/", 1)[-1]
        self._send(200 if digest in self.blobs else 404, b"")

    def do_POST(self):
        uid = uuid.uuid4().hex
        self.uploads[uid] = b""
        self._send(202, b"", {"Location": f"/v2/up/blobs/uploads/{uid}"})

    def do_PATCH(self):
        uid = urllib.parse.urlsplit(self.path).path.rsplit("/", 1)[-1]
        data = self.rfile.read(int(self.headers["Content-Length"]))
        start = int(self.headers["Content-Range"].split("-")[0])
        if start != len(self.uploads[uid]):
            self._send(416, b"")
        elif uid not in self.dropped and len(data) > 1:
            self.dropped.add(uid)
            self.uploads[uid] += data[: len(data) // 2]
            self.close_connection = True
            self.connection.shutdown(2)  # no answer: the connection drops
        else:
            self.uploads[uid] += data
            self._send(202, b"", {"Location": f"/v2/up/blobs/uploads/{uid}", "Range": f"0-{len(self.uploads[uid]) - 1}"})

    def do_PUT(self):
        url = urllib.parse.urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "/manifests/" in url.path:
            self._send(201, b"")
            return
        uid = url.path.rsplit("/", 1)[-1]
        digest = urllib.parse.parse_qs(url.query)["digest"][0]
        data = self.uploads.pop(uid) + body
        ok = "sha256:" + hashlib.sha256(data).hexdigest() == digest
        if ok:
            self.blobs[digest] = data
        self._send(201 if ok else 400, b"")

    # An image whose layer stops half way (for Ctrl-C in the middle of a pull).
    STALL_LAYER = b"\0" * (1 << 20)
    STALL_CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {
        "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(STALL_LAYER).hexdigest()]}}).encode()

    def _stall(self, path: str):
        layer = "sha256:" + hashlib.sha256(self.STALL_LAYER).hexdigest()
        config = "sha256:" + hashlib.sha256(self.STALL_CONFIG).hexdigest()
        if "/manifests/" in path:
            self._send(200, json.dumps({
                "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config,
                           "size": len(self.STALL_CONFIG)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer,
                            "size": len(self.STALL_LAYER)}]}).encode())
        elif path.endswith(config):
            self._send(200, self.STALL_CONFIG)
        else:
            try:
                self.send_response(200)
                self.send_header("Content-Length", str(len(self.STALL_LAYER)))
                self.end_headers()
                self.wfile.write(self.STALL_LAYER[: 1 << 16])
                self.wfile.flush()
                time.sleep(10)
            except OSError:
                pass

    def _status(self, uid: str):
        self._send(204, b"", {"Range": f"0-{len(self.uploads[uid]) - 1}"})

    def _send(self, code: int, body: bytes, headers: dict | None = None):
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # lg gave up on a slow answer: what the test wants
            pass


@pytest.fixture
def hostile():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_hostile_registry(rlg, hostile):
    start = time.monotonic()
    assert "timed out" in rlg.fails("pull", f"{hostile}/slow/app:1", "--timeout", "0.5", code=1)
    assert time.monotonic() - start < 4.5
    # a 429 is honoured once (Retry-After), then the answer counts: here a 404
    assert "not found" in rlg.fails("pull", f"{hostile}/busy/app:1", code=1)
    assert "rate limited" in rlg.fails("pull", f"{hostile}/always/app:1", code=1)
    digest = "sha256:" + "0" * 64
    assert "the registry sent something else" in rlg.fails("pull", f"{hostile}/lie/app@{digest}", code=1)
    err = rlg.fails("pull", f"{hostile}/none/app:1", code=1)
    assert "\x1b" not in err and "red" in err
    assert refs(rlg) == ""


def test_run_create_build_pull_what_is_missing(rlg, rlg2, registry, busybox_copy, tmp_path):
    name = f"{registry.host}/pp/app:1"
    tip = make_image(rlg, busybox_copy, name)
    push(rlg, name)
    assert "no such image" in rlg2.fails("run", "--rm", "--pull", "never", name, "true", code=125)
    assert refs(rlg2).count("refs/heads") == 0
    assert rlg2.out("run", "--rm", "--network", "none", name, "cat", "/added") == "added\n"
    assert log_ids(rlg2, name)[0] == tip
    # FROM pulls too, into a root that has never seen the image
    (tmp_path / "ctx2").mkdir()
    (tmp_path / "ctx2" / "Dockerfile").write_text(f"FROM {registry.host}/pp/app:1\nENV MORE=1\n")
    other = RegLg(str(tmp_path / "lgroot3"), str(tmp_path))
    try:
        other("build", "-q", "-t", "built:1", str(tmp_path / "ctx2"))
        assert log_ids(other, "built:1")[1] == tip
        assert "pulling it failed" in other.fails("create", f"{registry.host}/pp/none:1", code=125)
    finally:
        cleanup_root(other)


def test_chunked_upload_read_back_by_skopeo(rlg, registry, busybox_copy, tmp_path):
    """Uploads in 64 KiB PATCHes (through the Python API, where the chunk size is a knob)."""
    name = f"{registry.host}/chunk/app:1"
    make_image(rlg, busybox_copy, name)
    code = ("import json, sys; from layergit.api import open_repo;"
            "from layergit.api import RegistryOptions, registry_push;"
            f"r = registry_push(open_repo(), {name!r}, RegistryOptions(chunk_size=65536, jobs=2));"
            "print(json.dumps([r.uploaded, r.requests]))")
    proc = subprocess.run([rlg.python, "-c", code], env=rlg.env(), capture_output=True, text=True, check=True)
    uploaded, requests = json.loads(proc.stdout)
    size = sum(x["size"] for x in manifest(registry, "chunk/app", "1")["layers"])
    assert uploaded == 3 and requests > size // 65536  # one PATCH per chunk at least
    run("skopeo", "copy", "--src-tls-verify=false", f"docker://{name}", f"oci:{tmp_path}/chunked:x")


def test_mirror_from_registries_conf(rlg, rlg2, registry, busybox_copy, tmp_path):
    """registries.conf names our registry as the mirror of one that does not resolve."""
    tip = make_image(rlg, busybox_copy, f"{registry.host}/mirror/app:1")
    push(rlg, f"{registry.host}/mirror/app:1")
    conf = tmp_path / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "nowhere.invalid"\n[[registry.mirror]]\nlocation = "{registry.host}"\n')
    env = rlg2.env(CONTAINERS_REGISTRIES_CONF=str(conf))
    [result] = json.loads(rlg2.out("pull", "nowhere.invalid/mirror/app:1", "--json", env=env))
    assert result["id"] == tip and result["tags"] == ["nowhere.invalid/mirror/app:1"]


class TokenIssuer:
    """The Bearer flow of Docker Hub and GHCR, offline: a token service that knows alice,
    signs RS256 JWTs with a key made here, which the registry trusts by certificate."""

    def __init__(self, work):
        self.key, self.cert = str(work / "issuer.key"), str(work / "issuer.pem")
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key, "-out", self.cert,
            "-subj", "/CN=lg-test-issuer", "-days", "1")
        der = run_bytes("openssl", "x509", "-in", self.cert, "-outform", "DER")
        self.x5c = base64.b64encode(der).decode()
        self.requests = 0
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                issuer.requests += 1
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                basic = "Basic " + base64.b64encode(b"alice:s3cret").decode()
                given = self.headers.get("Authorization")
                if given is not None and given != basic:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                access = []
                for scope in (query.get("scope") or [""])[0].split():
                    kind, _, rest = scope.partition(":")
                    name, _, actions = rest.rpartition(":")
                    if kind == "repository" and given is not None:
                        access.append({"type": "repository", "name": name, "actions": actions.split(",")})
                body = json.dumps({"token": issuer.sign(access)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sign(self, access: list) -> str:
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": "lg-test-issuer", "sub": "alice", "aud": "lg-test", "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        signature = run_bytes("openssl", "dgst", "-sha256", "-sign", self.key, input=signing.encode())
        return f"{signing}.{b64(signature)}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def run_bytes(*args, input: bytes | None = None) -> bytes:
    return subprocess.run(args, input=input, capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory):
    work = tmp_path_factory.mktemp("token-registry")
    issuer = TokenIssuer(work)
    try:
        reg = start_registry(work, token={"realm": issuer.realm, "service": "lg-test", "issuer": "lg-test-issuer",
                                          "rootcertbundle": issuer.cert})
        try:
            yield reg, issuer
        finally:
            reg.stop()
    finally:
        issuer.stop()


def test_bearer_token_flow(rlg, rlg2, token_registry, busybox_copy):
    reg, issuer = token_registry
    name = f"{reg.host}/tok/app:1"
    tip = make_image(rlg, busybox_copy, name)
    assert "authentication required" in rlg.fails("push", name, code=1)  # an anonymous token grants nothing
    assert "refused the credentials" in rlg.fails("login", "-u", "alice", "--password-stdin", reg.host,
                                                  input=b"nope\n", code=1)
    rlg("login", "-u", "alice", "--password-stdin", reg.host, input=b"s3cret\n")
    before = issuer.requests
    assert push(rlg, name)["uploaded"] == 3
    assert issuer.requests - before <= 3  # a token per scope, reused, not one per request
    assert pull(rlg2, name)["id"] == tip


@pytest.fixture
def containerd(tmp_path):
    """A containerd of this test's own (root, state, socket, namespace), without CRI;
    stopped and its state removed afterwards, with the cgroup its runs made for the
    namespace (containerd's cgroup parent, /NAMESPACE in each hierarchy)."""
    state = f"/run/lgtest-containerd-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    namespace = f"lgtest-{uuid.uuid4().hex[:8]}"
    sock = str(tmp_path / "containerd.sock")
    config = tmp_path / "containerd.toml"
    config.write_text(f'version = 2\nroot = "{tmp_path / "containerd"}"\nstate = "{state}"\n'
                      f'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "{sock}"\n')
    proc = subprocess.Popen(["containerd", "--config", str(config)], stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "containerd.log", "wb"))
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["ctr", "-a", sock, "version"], capture_output=True).returncode != 0:
            assert time.monotonic() < deadline and proc.poll() is None, "containerd did not start"
            time.sleep(0.1)
        yield ["ctr", "-a", sock, "-n", namespace]
    finally:
        proc.terminate()
        proc.wait(10)
        for line in reversed(open("/proc/self/mounts").read().splitlines()):
            target = line.split()[1]
            if target.startswith((str(tmp_path), state)):
                subprocess.run(["umount", "-l", target], capture_output=True)
        shutil.rmtree(state, ignore_errors=True)
        for parent in glob.glob(f"/sys/fs/cgroup/{namespace}") + glob.glob(f"/sys/fs/cgroup/*/{namespace}"):
            os.rmdir(parent)  # empty once its runs are gone; one that is not is a leak to see


@pytest.mark.root
def test_containerd_pulls_and_runs_what_lg_pushed(rlg, registry, busybox_copy, containerd):
    name = f"{registry.host}/ctr/app:1"
    make_image(rlg, busybox_copy, name)
    pushed = push(rlg, name)
    out = run(*containerd, "images", "pull", "--plain-http", name)
    assert pushed["digest"] in run(*containerd, "images", "ls")
    assert "unpacking linux/" in out
    out = run(*containerd, "run", "--rm", name, f"lgtest-{uuid.uuid4().hex[:8]}", "/bin/sh", "-c",
              "cat /added; id -u; echo $GREETING; test ! -e /bin/ls && echo gone")
    assert out == "added\n65534\nhello\ngone\n"


def upload(reg, repo: str, data: bytes) -> dict:
    """A blob put by hand (monolithic upload), as a hostile pusher would; its descriptor."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _, _, headers = api(reg, f"/v2/{repo}/blobs/uploads/", "POST", b"")
    location = headers["Location"]
    sep = "&" if "?" in location else "?"
    url = location if location.startswith("http") else f"http://{reg.host}{location}"
    req = urllib.request.Request(f"{url}{sep}digest={digest}", data=data, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(req, timeout=10).close()
    return {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": len(data)}


def hostile_image(reg, repo: str, layer_tar: bytes) -> None:
    layer = gzip.compress(layer_tar, mtime=0)
    desc = upload(reg, repo, layer)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]},
                         "history": [{"created_by": "hostile"}]}).encode()
    cdesc = dict(upload(reg, repo, config), mediaType="application/vnd.oci.image.config.v1+json")
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cdesc,
         "layers": [desc]}
    api(reg, f"/v2/{repo}/manifests/1", "PUT", json.dumps(m).encode(),
        {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})


def tar_of(*members: tuple[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_hostile_layers_go_through_imports_parser_and_limits(rlg, registry):
    hostile_image(registry, "evil/escape", tar_of(("ok", b"fine\n"), ("../../etc/evil", b"x")))
    assert "'..' component" in rlg.fails("pull", f"{registry.host}/evil/escape:1", code=1)
    hostile_image(registry, "evil/bomb", tar_of(("zeros", b"\0" * (8 << 20))))  # 8 MiB from ~8 KiB
    err = rlg.fails("pull", f"{registry.host}/evil/bomb:1", "--max-bytes", "1000000", code=1)
    assert "unpacks to more than 1000000 bytes" in err
    assert refs(rlg) == ""
    tmp = os.path.join(rlg.root, "tmp")
    assert not os.path.isdir(tmp) or not os.listdir(tmp)


def test_upload_resumes_after_a_dropped_connection(rlg, hostile, busybox_copy):
    name = f"{hostile}/up/app:1"
    rlg("commit", busybox_copy, "-t", name)
    result = push(rlg, name)
    assert result["uploaded"] == 2  # the layer and the config, each put together from two PATCHes
    assert _Hostile.dropped and not _Hostile.uploads


def test_tls_registry_with_a_ca_from_certs_d(tmp_path, monkeypatch):
    """HTTPS checked against the CA certs.d gives for HOST:PORT; without it, one line about
    the certificate (in-process: certs.d lives in /etc, which a test does not write)."""
    from layergit.errors import LgError
    from layergit.porcelain import registry as porcelain
    from layergit.registry import settings

    ca_key, ca = tmp_path / "ca.key", tmp_path / "ca.pem"
    key, csr, cert = tmp_path / "srv.key", tmp_path / "srv.csr", tmp_path / "srv.pem"
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
        "-subj", "/CN=lg-test-ca", "-days", "1")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
        "-days", "1", "-extfile", tmp_path / "san.ext")
    reg = start_registry(tmp_path / "tls", tls={"certificate": cert, "key": key})
    try:
        options = porcelain.RegistryOptions(timeout=10)
        monkeypatch.setattr(settings, "CERTS_DIRS", (str(tmp_path / "certs.d"),))
        monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "auth.json"))
        with pytest.raises(LgError, match="certificate verify failed"):
            porcelain.connect(reg.host, options)
        (tmp_path / "certs.d" / reg.host).mkdir(parents=True)
        shutil.copy(ca, tmp_path / "certs.d" / reg.host / "ca.crt")
        client = porcelain.connect(reg.host, options)
        try:
            assert client.endpoint.secure and client.endpoint.tls_verify and client.endpoint.ca_certs
            client.ping()  # over HTTPS, the certificate checked against certs.d's CA
        finally:
            client.close()
    finally:
        reg.stop()


def _serve_once(answer) -> tuple[int, threading.Thread]:
    """A loopback port whose first connection is given to ``answer(sock)``, then closed."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve():
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                try:
                    answer(conn)
                except OSError:
                    pass  # the probe hung up first: what it concluded is the test's to check

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def test_a_plain_http_registry_is_found_without_the_ca_store(registry, monkeypatch, tmp_path):
    """A loopback registry on plain HTTP: an https try with certificates checked would
    load the system's CA store only to fail; a handshake without certificates sees the
    plain answer first. A TLS server, a closed port and one that hangs up at once are
    left to the checked handshake (the probe says no), which reports what it meets."""
    import socket
    import ssl

    from layergit.porcelain import registry as porcelain
    from layergit.registry.client import PROBE_SECONDS, Endpoint, answers_plain_http

    def no_ca_store(*_args, **_kwargs):
        raise AssertionError("the CA store was loaded to reach a plain HTTP registry")

    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "auth.json"))
    with monkeypatch.context() as patched:
        patched.setattr(ssl.SSLContext, "load_default_certs", no_ca_store)
        client = porcelain.connect(registry.host, porcelain.RegistryOptions(timeout=10))
        try:
            assert not client.endpoint.secure
            client.ping()
        finally:
            client.close()
    assert answers_plain_http(Endpoint(registry.host, connect_timeout=10))
    assert not answers_plain_http(Endpoint(registry.host, secure=False))
    assert not answers_plain_http(Endpoint(registry.host, proxy="http://127.0.0.1:9"))  # the proxy decides

    key, cert = tmp_path / "probe.key", tmp_path / "probe.pem"
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1", "-days", "1")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)

    def tls(conn):
        with server.wrap_socket(conn, server_side=True) as secured:
            secured.recv(1)  # until the probe closes

    port, thread = _serve_once(tls)
    assert not answers_plain_http(Endpoint(f"127.0.0.1:{port}", connect_timeout=10))
    thread.join(10)
    port, thread = _serve_once(lambda conn: None)  # hangs up without a word
    assert not answers_plain_http(Endpoint(f"127.0.0.1:{port}", connect_timeout=10))
    thread.join(10)
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    assert not answers_plain_http(Endpoint(f"127.0.0.1:{port}", connect_timeout=10))  # refused
    quiet = threading.Event()
    port, thread = _serve_once(lambda conn: quiet.wait(10))  # takes the connection, never answers
    started = time.monotonic()
    assert not answers_plain_http(Endpoint(f"127.0.0.1:{port}", connect_timeout=10))
    assert time.monotonic() - started < PROBE_SECONDS + 2, "the probe waited out the connect timeout"
    quiet.set()
    thread.join(10)


def test_a_pull_ends_its_download_threads_before_it_materialises(rlg, tmp_path):
    """Layers after the first download on threads; once the last is handed over they
    end, so that materialising the rootfs can fork (fs.pieces writes a tree with two
    processes only where no other thread runs)."""
    import io

    from layergit.fs.imagearchive import LayerRef
    from layergit.porcelain.registry import _Prefetch
    from layergit.porcelain.repo import open_repo

    def downloads() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("ThreadPoolExecutor")]

    before = downloads()
    layers = [LayerRef(lambda i=i: io.BytesIO(b"layer %d" % i), f"layer {i}") for i in range(4)]
    with _Prefetch(open_repo(rlg.root), layers, jobs=2) as prefetched:
        assert len(downloads()) > len(before)
        for layer in prefetched:
            with layer.open() as stream:
                assert stream.read().startswith(b"layer ")
        assert downloads() == before, "the download threads outlived the last layer"


def test_ctrl_c_in_the_middle_of_a_pull_leaves_nothing(rlg, hostile):
    proc = subprocess.Popen([rlg.python, "-m", "cli", "pull", f"{hostile}/stall/app:1"], env=rlg.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not _Hostile.hits.get("/v2/stall/app/blobs/sha256:" + hashlib.sha256(_Hostile.STALL_LAYER).hexdigest()):
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 130
    assert refs(rlg) == ""
    tmp = os.path.join(rlg.root, "tmp")
    assert not os.path.isdir(tmp) or os.listdir(tmp) == []
    assert os.listdir(os.path.join(rlg.root, "store.git", "objects", "pack")) == []  # no pack, whole or temporary


def test_tls_verify_false_as_podman_spells_it(rlg, rlg2, busybox_copy, tmp_path):
    """A registry with a self-signed certificate: refused by default; ``--tls-verify=false``
    (podman's spelling) and ``--no-tls-verify`` both skip the check; a value that is no
    boolean is one usage line."""
    key, cert = tmp_path / "self.key", tmp_path / "self.pem"
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
        "-subj", "/CN=127.0.0.1", "-days", "1", "-addext", "subjectAltName=IP:127.0.0.1")
    reg = start_registry(tmp_path / "selfsigned", tls={"certificate": cert, "key": key})
    try:
        name = f"{reg.host}/self/app:1"
        rlg("commit", busybox_copy, "-t", name)
        err = rlg.fails("push", "--timeout", "10", name)
        assert "certificate verify failed" in err and len(err.strip().splitlines()) == 1
        pushed = push(rlg, name, "--tls-verify=false")
        assert pushed["uploaded"] >= 2
        err = rlg2.fails("pull", "--tls-verify=maybe", name, code=2)
        assert "--tls-verify takes true or false" in err
        assert pull(rlg2, name, "--tls-verify=false")["id"] == pushed["id"]
        assert pull(rlg2, name, "--no-tls-verify")["downloaded"] == 0
        assert "certificate verify failed" in rlg2.fails("pull", "--tls-verify=true", "--timeout", "10", name)
    finally:
        reg.stop()


FAKE_HELPER = r'''#!/usr/bin/env python3
"""A docker-credential helper keeping its secrets in a JSON file beside it (the protocol:
store reads {ServerURL, Username, Secret}; get and erase read the server URL)."""
import json, os, sys
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "secrets.json")
secrets = json.load(open(path)) if os.path.exists(path) else {}
action, data = sys.argv[1], sys.stdin.read()
if action == "store":
    entry = json.loads(data)
    secrets[entry["ServerURL"]] = [entry["Username"], entry["Secret"]]
elif action == "get" and data.strip() in secrets:
    user, secret = secrets[data.strip()]
    print(json.dumps({"ServerURL": data.strip(), "Username": user, "Secret": secret}))
    sys.exit(0)
elif action == "erase" and data.strip() in secrets:
    del secrets[data.strip()]
else:
    print("credentials not found in native keychain")
    sys.exit(1)
json.dump(secrets, open(path, "w"))
'''


def test_login_stores_into_the_configured_credential_helper(rlg, rlg2, auth_registry, busybox_copy, tmp_path):
    """With credsStore set, lg login hands the credentials to docker-credential-NAME
    store (the auth file keeps no password), push reads them back through get, and
    logout erases them."""
    helpers = tmp_path / "helpers"
    helpers.mkdir()
    program = helpers / "docker-credential-lgtest"
    program.write_text(FAKE_HELPER)
    program.chmod(0o755)
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"credsStore": "lgtest", "auths": {auth_registry.host: {"auth": "c3RhbGU6b2xk"}}}))
    path = f"{helpers}:{os.environ['PATH']}"
    name = f"{auth_registry.host}/helper/app:1"
    rlg("commit", busybox_copy, "-t", name)
    out = rlg.out("login", "-u", "alice", "--password-stdin", auth_registry.host, input=b"s3cret\n",
                  env=rlg.env(PATH=path))
    assert "docker-credential-lgtest" in out and "s3cret" not in out
    assert json.loads((helpers / "secrets.json").read_text()) == {auth_registry.host: ["alice", "s3cret"]}
    assert "s3cret" not in auth.read_text() and json.loads(auth.read_text())["auths"] == {}  # the stale entry went
    assert json.loads(rlg.out("push", name, "--json", env=rlg.env(PATH=path)))["uploaded"] >= 2
    rlg.out("logout", auth_registry.host, env=rlg.env(PATH=path))
    assert json.loads((helpers / "secrets.json").read_text()) == {}
    assert "authentication required" in rlg2.fails("pull", name, code=1, env=rlg2.env(PATH=path))
    assert "not logged in" in rlg.fails("logout", auth_registry.host, code=1, env=rlg.env(PATH=path))
