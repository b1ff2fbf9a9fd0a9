"""Peers that attack: registries, git remotes and clients of ``lg serve`` playing what a
hostile one can do, each against the defence it tests.

The registries are small servers written here (http.server on loopback), since Debian's
docker-registry never misbehaves this way: bodies without end, redirects to another
host that then asks for credentials, documents trickled a byte at a time. lg runs as a
user runs it, with its own root and auth file; each attack must end in one line on
stderr, quickly, with nothing written and no secret sent where it should not go.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import subprocess
import threading
import time

import pytest

from .test_registry import RegLg, refs, rlg  # noqa: F401 (rlg: the fixture, shared)
from .test_remotes import lg_b  # noqa: F401 (the fixture, shared)

USER, PASSWORD = "alice", "s3cret-for-A"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


class Peer:
    """An HTTP server on 127.0.0.1 whose answers are the test's functions: ``routes`` maps
    a path prefix to ``f(handler)``; every request's method, path and Authorization is
    kept in ``seen``."""

    def __init__(self, routes: dict):
        peer = self
        self.routes = routes
        self.seen: list[tuple[str, str, str | None]] = []
        self.stop = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                peer.seen.append((self.command, self.path, self.headers.get("Authorization")))
                for prefix, answer in peer.routes.items():
                    if self.path.startswith(prefix):
                        try:
                            answer(self)
                        except OSError:  # lg hung up: what the attack expects
                            pass
                        return
                send(self, 404, b"{}")

            do_HEAD = do_GET

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def send(handler, code: int, body: bytes, headers: dict | None = None) -> None:
    handler.send_response(code)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def endless(handler, code: int, headers: dict, chunked: bool = True, stop: threading.Event | None = None) -> None:
    """A body that never ends: chunked, or under a Content-Length of a terabyte."""
    handler.send_response(code)
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.send_header("Transfer-Encoding" if chunked else "Content-Length", "chunked" if chunked else str(1 << 40))
    handler.end_headers()
    piece = b"[" * (64 << 10)
    frame = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
    while stop is None or not stop.is_set():
        handler.wfile.write(frame)


@pytest.fixture
def peers():
    made: list[Peer] = []

    def make(routes: dict) -> Peer:
        made.append(Peer(routes))
        return made[-1]

    yield make
    for peer in made:
        peer.close()


def log_in(lg: RegLg, host: str) -> None:
    """Credentials for ``host`` in lg's auth file, as ``lg login`` writes them."""
    with open(os.path.join(lg.home, "auth.json"), "w") as f:
        json.dump({"auths": {host: {"auth": BASIC.removeprefix("Basic ")}}}, f)


def timed_failure(lg, *args, limit: float = 10.0) -> str:
    start = time.monotonic()
    err = lg.fails(*args, code=1, timeout=3 * limit)
    assert time.monotonic() - start < limit, err
    return err


# --- registries ------------------------------------------------------------------------


def test_bodies_without_end_are_not_read_to_their_end(rlg, peers):
    """A manifest, a redirect and a refusal that each send forever: lg reads what it needs
    (at most the 4 MiB a manifest may be), hangs up, and says so."""
    reg = peers({})
    json_type = {"Content-Type": "application/json"}
    reg.routes.update({
        "/v2/endless/": lambda h: endless(h, 200, json_type, stop=reg.stop),
        "/v2/moved/": lambda h: endless(h, 302, {"Location": "/v2/endless/app/manifests/1"}, chunked=False,
                                        stop=reg.stop),
        "/v2/refused/": lambda h: endless(h, 401, {"WWW-Authenticate": 'Basic realm="r"', **json_type},
                                          stop=reg.stop),
        "/v2/": lambda h: send(h, 200, b"{}"),
    })
    assert "is over 4194304 bytes" in timed_failure(rlg, "pull", f"{reg.host}/endless/app:1")
    assert "is over 4194304 bytes" in timed_failure(rlg, "pull", f"{reg.host}/moved/app:1")
    assert "authentication required" in timed_failure(rlg, "pull", f"{reg.host}/refused/app:1")
    assert refs(rlg) == ""


def test_a_host_redirected_to_never_gets_the_registry_credentials(rlg, peers):
    """Registry A (where alice logged in) sends its manifest to host B, as blobs go to a
    CDN; B asks for a Bearer token at a realm of its own. Docker drops Authorization on a
    redirect to another host; lg also refuses to answer B's challenge with A's password."""
    cdn = peers({})
    cdn.routes.update({
        "/token": lambda h: send(h, 200, b'{"token": "t"}'),
        "/": lambda h: send(h, 401, b"{}", {"WWW-Authenticate": f'Bearer realm="http://{cdn.host}/token"'}),
    })

    def registry_api(h):
        if h.headers.get("Authorization") != BASIC:
            send(h, 401, b"{}", {"WWW-Authenticate": 'Basic realm="A"'})
        elif h.path == "/v2/":
            send(h, 200, b"{}")
        else:
            send(h, 307, b"", {"Location": f"http://{cdn.host}/manifest"})

    reg = peers({"/v2/": registry_api})
    log_in(rlg, reg.host)
    err = timed_failure(rlg, "pull", f"{reg.host}/app:1")
    assert f"redirected to {cdn.host}, which asks for credentials" in err
    assert ("GET", "/manifest", None) in cdn.seen  # the redirect was followed, without A's Authorization
    assert all(auth is None for _, _, auth in cdn.seen), cdn.seen
    assert not any(path.startswith("/token") for _, path, _ in cdn.seen)
    assert any(auth == BASIC for _, _, auth in reg.seen)  # A itself had them
    assert refs(rlg) == ""


def test_a_tls_registry_gets_no_password_sent_to_a_plain_http_realm(rlg, peers, tmp_path):
    """A registry spoken to over TLS names a token service on plain http: Docker sends
    the user's password there in the clear. lg refuses and says why."""
    import ssl

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1", "-days", "1"], check=True, capture_output=True)
    realm = peers({"/token": lambda h: send(h, 200, b'{"token": "t"}')})
    reg = peers({"/v2/": lambda h: send(h, 401, b"{}", {"WWW-Authenticate": f'Bearer realm="http://{realm.host}/token"'})})
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    reg.server.socket = context.wrap_socket(reg.server.socket, server_side=True)
    log_in(rlg, reg.host)
    err = timed_failure(rlg, "pull", "--no-tls-verify", f"{reg.host}/app:1")
    assert "is plain http; lg sends the credentials of a TLS registry over TLS only" in err
    assert realm.seen == [] and reg.seen  # the registry answered over TLS; the realm was never asked


def trickle(handler, body: bytes, stop: threading.Event, pause: float = 0.05) -> None:
    """``body`` a byte at a time, each well within the read timeout of the one before."""
    send_headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json", "Content-Length": str(len(body))}
    handler.send_response(200)
    for key, value in send_headers.items():
        handler.send_header(key, value)
    handler.end_headers()
    for i in range(len(body)):
        if stop.wait(pause):
            return
        handler.wfile.write(body[i:i + 1])
        handler.wfile.flush()


def test_documents_trickled_a_byte_at_a_time_are_given_up_on(rlg, peers):
    """A manifest, or an image config, sent a byte every 50 ms: never silent for the
    read timeout, it would take days; lg gives a document four read timeouts in all."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "pad": "x" * 4000}).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": config_digest, "size": len(config)},
                           "layers": []}).encode()
    reg = peers({})
    reg.routes.update({
        "/v2/slow/": lambda h: trickle(h, b"{" + b" " * (1 << 20) + b"}", reg.stop),
        "/v2/cfg/app/manifests/": lambda h: send(h, 200, manifest),
        "/v2/cfg/app/blobs/": lambda h: trickle(h, config, reg.stop),
        "/v2/": lambda h: send(h, 200, b"{}"),
    })
    err = timed_failure(rlg, "pull", "--timeout", "1", f"{reg.host}/slow/app:1")
    assert "manifest of slow/app: not received within 4 seconds" in err
    err = timed_failure(rlg, "pull", "--timeout", "1", f"{reg.host}/cfg/app:1")
    assert "image config: not received within 4 seconds" in err
    assert refs(rlg) == ""


# --- git remotes -----------------------------------------------------------------------


def test_the_callers_git_environment_reaches_no_git_lg_runs(lg, lg_b, tmp_path):
    """lg run from inside another repository's git (a hook, an alias, a rebase --exec)
    inherits variables naming that repository: git would fetch into its object store
    and refs, or refuse every ref update (a pre-receive hook's quarantine). lg's git
    works on the store and the remote, and the caller's repository is left alone."""
    from .test_remotes import bare, write
    from .test_remotes import refs as git_refs

    src = tmp_path / "src"
    write(src / "etc" / "hostname", b"box\n")
    remote = bare(tmp_path / "remote.git")
    theirs = bare(tmp_path / "callers.git")
    before = sorted(os.path.relpath(os.path.join(d, f), theirs) for d, _, fs in os.walk(theirs) for f in fs)
    env = lg.env(GIT_DIR=theirs, GIT_COMMON_DIR=theirs, GIT_OBJECT_DIRECTORY=os.path.join(theirs, "objects"),
                 GIT_SHALLOW_FILE=os.path.join(theirs, "shallow"), GIT_QUARANTINE_PATH=os.path.join(theirs, "objects"),
                 GIT_NAMESPACE="elsewhere", GIT_REPLACE_REF_BASE="refs/elsewhere/")
    lg("commit", str(src), "-t", "app:1")
    lg("push", remote, "app:1", env=env)
    tip = git_refs(os.path.join(lg.root, "store.git"))["refs/heads/app/1"]
    assert git_refs(remote) == {"refs/heads/app/1": tip}
    lg_b("images")
    lg_b("pull", remote, "app:1", env=lg_b.env(**{k: v for k, v in env.items() if k.startswith("GIT_")}))
    assert git_refs(os.path.join(lg_b.root, "store.git"))["refs/heads/app/1"] == tip
    after = sorted(os.path.relpath(os.path.join(d, f), theirs) for d, _, fs in os.walk(theirs) for f in fs)
    assert after == before and git_refs(theirs) == {}


def test_gc_and_fsck_work_on_the_store_whatever_git_dir_says(lg, tmp_path):
    """GIT_DIR wins over ``git -C STORE``: lg gc, run from another repository's hook, ran
    ``git gc --prune=now`` in that repository, and lg fsck checked it in the store's
    stead. Both now work on the store and leave the caller's repository as it was."""
    from .test_remotes import bare, write

    write(tmp_path / "src" / "etc" / "hostname", b"box\n")
    lg("commit", str(tmp_path / "src"), "-t", "app:1")
    theirs = bare(tmp_path / "callers.git")
    loose = subprocess.run(["git", "--git-dir", theirs, "hash-object", "-w", "--stdin"], input=b"unreachable\n",
                           capture_output=True, check=True).stdout.decode().strip()
    before = sorted(os.path.relpath(os.path.join(d, f), theirs) for d, _, fs in os.walk(theirs) for f in fs)
    env = lg.env(GIT_DIR=theirs, GIT_COMMON_DIR=theirs)
    lg("gc", env=env)
    store = os.path.join(lg.root, "store.git")
    os.unlink(os.path.join(store, "objects", "pack", next(
        n for n in os.listdir(os.path.join(store, "objects", "pack")) if n.endswith(".pack"))))
    assert lg("fsck", env=env, check=False).returncode != 0  # the store's damage is found
    after = sorted(os.path.relpath(os.path.join(d, f), theirs) for d, _, fs in os.walk(theirs) for f in fs)
    assert after == before and loose[:2] in os.listdir(os.path.join(theirs, "objects"))


# --- clients of lg serve ---------------------------------------------------------------


def _backends(pid: int) -> list[int]:
    """The git-http-backend processes ``pid`` has started and that still run."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if name.startswith("git-http-backen") and int(rest[1]) == pid:
            found.append(int(entry))
    return found


def _until_closed(sock, limit: float) -> bytes:
    """What the server sends until it closes; fails if it keeps the connection open past ``limit``."""
    sock.settimeout(limit)
    got = b""
    try:
        while piece := sock.recv(65536):
            got += piece
    except ConnectionResetError:
        pass
    return got


def test_serve_drops_silent_clients_and_caps_connections(lg, tmp_path):
    """Slowloris against lg serve: a connection that says nothing, and a request whose body
    stops half way (its git-http-backend waiting for the rest), are dropped after
    --timeout; a flood of connections gets 503 past MAX_CLIENTS instead of a thread each.
    Then the server still serves."""
    import socket

    from layergit.transport.serve import MAX_CLIENTS

    from .test_remotes import free_port, wait_port, write

    write(tmp_path / "src" / "etc" / "hostname", b"box\n")
    lg("commit", str(tmp_path / "src"), "-t", "app:1")
    port = free_port()
    proc = subprocess.Popen([lg.python, "-m", "cli", "serve", "--listen", f"127.0.0.1:{port}", "--timeout", "2"],
                            env=lg.env(), stderr=subprocess.PIPE)
    try:
        wait_port(port, proc)
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", port)) as idle:
            assert _until_closed(idle, 6) == b""
        assert time.monotonic() - start < 5

        with socket.create_connection(("127.0.0.1", port)) as half:
            half.sendall(b"POST /git-upload-pack HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/x-git-upload-pack-request\r\n"
                         b"Content-Length: 100000\r\n\r\n0032want ")
            deadline = time.monotonic() + 5
            while not _backends(proc.pid):
                assert time.monotonic() < deadline, "no backend started"
                time.sleep(0.05)
            _until_closed(half, 6)
        deadline = time.monotonic() + 3
        while _backends(proc.pid):
            assert time.monotonic() < deadline, "the backend of a dropped request still runs"
            time.sleep(0.05)

        flood = [socket.create_connection(("127.0.0.1", port)) for _ in range(MAX_CLIENTS)]
        try:
            with socket.create_connection(("127.0.0.1", port)) as one_more:
                assert _until_closed(one_more, 1.5).startswith(b"HTTP/1.0 503")
        finally:
            for sock in flood:
                sock.close()
        time.sleep(0.2)
        listed = subprocess.run(["git", "ls-remote", f"http://127.0.0.1:{port}/"], capture_output=True, timeout=30)
        assert b"refs/heads/app/1" in listed.stdout, listed.stderr
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 128 + 15
    log = proc.stderr.read().decode()
    assert "Traceback" not in log, log


def test_layers_claiming_more_than_max_bytes_are_not_downloaded(rlg, peers):
    """A manifest whose layers claim a terabyte: the first would stream into the importer
    and stop at --max-bytes, but the others would be spooled to disk in parallel, each as
    large as it claims. lg refuses the manifest before it asks for any layer."""
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64] * 3}}).encode()
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 1 << 40}
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + hashlib.sha256(config).hexdigest(), "size": len(config)},
        "layers": [{**layer, "digest": f"sha256:{i}" + "a" * 63} for i in range(3)]}).encode()
    reg = peers({})
    reg.routes.update({
        "/v2/big/app/manifests/": lambda h: send(h, 200, manifest),
        "/v2/big/app/blobs/sha256:" + hashlib.sha256(config).hexdigest(): lambda h: send(h, 200, config),
        "/v2/big/app/blobs/": lambda h: endless(h, 200, {}, stop=reg.stop),
        "/v2/": lambda h: send(h, 200, b"{}"),
    })
    err = timed_failure(rlg, "pull", "--max-bytes", "104857600", f"{reg.host}/big/app:1")
    assert "would unpack to more than 104857600 bytes" in err
    assert [path for _, path, _ in reg.seen if "/blobs/" in path] == [
        "/v2/big/app/blobs/sha256:" + hashlib.sha256(config).hexdigest()]
    assert refs(rlg) == ""


def test_serve_gives_no_object_only_hidden_refs_reach(lg, tmp_path):
    """lg serve hides containers' and the build cache's refs; with git's protocol v2 a
    client could still fetch their commits by id (v2's upload-pack grants any want). lg
    serve speaks v0, which refuses what it did not advertise; images still clone."""

    from .test_remotes import bare, free_port, gitc, wait_port, write

    write(tmp_path / "src" / "etc" / "hostname", b"box\n")
    lg("commit", str(tmp_path / "src"), "-t", "app:1")
    write(tmp_path / "src" / "etc" / "secret", b"a container's own file\n")
    lg("commit", str(tmp_path / "src"), "-t", "private:1")
    store = os.path.join(lg.root, "store.git")
    private = gitc(store, "rev-parse", "refs/heads/private/1").decode().strip()
    gitc(store, "update-ref", "refs/layergit/containers/0123abcd", private)  # as a container's commit
    gitc(store, "update-ref", "-d", "refs/heads/private/1")
    port = free_port()
    proc = subprocess.Popen([lg.python, "-m", "cli", "serve", "--listen", f"127.0.0.1:{port}"], env=lg.env(),
                            stderr=subprocess.PIPE)
    try:
        wait_port(port, proc)
        url = f"http://127.0.0.1:{port}/"
        for version in ("2", "0"):
            client = bare(tmp_path / f"client-v{version}.git")
            got = subprocess.run(["git", "--git-dir", client, "-c", f"protocol.version={version}", "fetch", url,
                                  private], capture_output=True, timeout=30)
            assert got.returncode != 0 and b"unadvertised object" in got.stderr, got.stderr
            assert subprocess.run(["git", "--git-dir", client, "cat-file", "-e", private]).returncode != 0
        clone = tmp_path / "clone.git"
        subprocess.run(["git", "clone", "-q", "--bare", url, str(clone)], check=True, capture_output=True, timeout=30)
        assert gitc(str(clone), "for-each-ref", "--format=%(refname)").split() == [b"refs/heads/app/1"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 128 + 15


def test_a_push_of_many_refs_is_checked_to_its_last_ref(lg, tmp_path):
    """lg serve --allow-push's pre-receive hook read the first MiB of the updates git
    gives it: 10,000 harmless image names filling it to a line's end, and the ref after
    them was admitted unchecked. The hook is run here as git runs it (a push of that many refs through
    lg serve takes git minutes): every update is checked, or the push refused whole."""

    from .test_remotes import write

    write(tmp_path / "src" / "etc" / "hostname", b"box\n")
    lg("commit", str(tmp_path / "src"), "-t", "app:1")
    good = json.loads(lg.out("inspect", "app:1"))[0]["Id"]
    line = f"{'0' * 40} {good} refs/heads/pad/{{:05d}}\n"
    count = (1 << 20) // len(line.format(0)) - 1
    updates = "".join(line.format(i) for i in range(count))
    fill = (1 << 20) - len(updates) - len(f"{'0' * 40} {good} refs/heads//1\n")
    updates += f"{'0' * 40} {good} refs/heads/{'p' * fill}/1\n"  # the first MiB ends at a line's end
    assert len(updates) == 1 << 20
    updates += f"{'0' * 40} {good} refs/zzz-not-an-image\n"
    hook = subprocess.run([lg.python, "-m", "layergit.porcelain.prereceive", lg.root], input=updates.encode(),
                          capture_output=True, timeout=60, env=lg.env())
    assert hook.returncode == 1 and b"lg: refused: refs/zzz-not-an-image is not a layergit image name" \
        in hook.stderr, hook.stderr


def test_a_remote_that_floods_stderr_does_not_hang_lg(lg, lg_b, tmp_path):
    """An ssh remote (here a stand-in for ssh that runs git-upload-pack locally) writes
    megabytes to stderr, as a hostile server can through ssh: lg read the ref listing to
    its end before stderr, so git blocked on a full stderr pipe and lg waited for ever."""
    from .test_remotes import bare, write
    from .test_remotes import refs as git_refs

    write(tmp_path / "src" / "etc" / "hostname", b"box\n")
    lg("commit", str(tmp_path / "src"), "-t", "app:1")
    remote = bare(tmp_path / "remote.git")
    lg("push", remote, "app:1")
    noisy = tmp_path / "noisy-ssh"
    noisy.write_text('#!/bin/sh\nhead -c 4000000 /dev/zero | tr "\\0" "x" >&2\nfor last; do :; done\nexec sh -c "$last"\n')
    noisy.chmod(0o755)
    env = lg_b.env(GIT_SSH_COMMAND=str(noisy), GIT_SSH_VARIANT="simple")
    lg_b("images")
    start = time.monotonic()
    lg_b("pull", f"ssh://example.invalid{remote}", "app:1", env=env, timeout=60)
    assert time.monotonic() - start < 30
    assert git_refs(os.path.join(lg_b.root, "store.git")) == git_refs(remote)


def test_an_index_naming_a_malformed_digest_is_one_short_line(rlg, peers):
    """An index whose manifest digest is 700 KB of terminal escapes: lg asked the registry
    for it and quoted it whole in the error (escaped, but one 3 MB line); now only a
    sha256 of 64 hex digits is asked for, and the size the index gives is checked."""
    platform = {"os": "linux", "architecture": "amd64"}
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": "sha256:" + "\x1b[2J" * 175_000, "size": 10, "platform": platform}]}
    body = json.dumps(index).encode()
    reg = peers({"/v2/idx/app/manifests/1": lambda h: send(h, 200, body),
                 "/v2/": lambda h: send(h, 200, b"{}")})
    err = timed_failure(rlg, "pull", "--platform", "linux/amd64", f"{reg.host}/idx/app:1")
    assert "the index's manifest: unsupported or malformed digest" in err and len(err) < 300, err[:300]
    assert not any("/manifests/sha256:" in path for _, path, _ in reg.seen)
    assert refs(rlg) == ""
