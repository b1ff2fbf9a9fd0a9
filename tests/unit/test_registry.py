"""The registry package's pure parts: reference grammar, platform choice, commit records,
auth files, endpoint choice, challenge and Retry-After parsing, streamed blob checks."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from types import SimpleNamespace

import pytest

from layergit.errors import LgError, NotFound, UsageError
from layergit.porcelain import provenance
from layergit.porcelain.registry import platform_of, select_platform
from layergit.registry import auth, settings
from layergit.registry.client import BlobStream, Credentials, RegistryError, _retry_after, parse_challenge
from layergit.registry.reference import parse
from layergit.store import names
from layergit.store.rawobj import Signature

from .memstore import MemStore

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, registry, repository, tag, digest, local", [
    ("debian", "docker.io", "library/debian", "latest", None, "debian:latest"),
    ("debian:12", "docker.io", "library/debian", "12", None, "debian:12"),
    ("team/app", "docker.io", "team/app", "latest", None, "team/app:latest"),
    ("docker.io/library/debian", "docker.io", "library/debian", "latest", None, "debian:latest"),
    ("index.docker.io/debian", "docker.io", "library/debian", "latest", None, "debian:latest"),
    ("localhost/app", "localhost", "app", "latest", None, "localhost/app:latest"),
    ("localhost:5000/team/app:1", "localhost:5000", "team/app", "1", None, "localhost:5000/team/app:1"),
    ("ghcr.io/o/app@" + D, "ghcr.io", "o/app", None, D, "ghcr.io/o/app:latest"),
    ("app:1@" + D, "docker.io", "library/app", "1", D, "app:1"),
    ("Example.com/app", "Example.com", "app", "latest", None, "Example.com/app:latest"),
])
def test_references_normalise_as_docker(text, registry, repository, tag, digest, local):
    ref = parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert ref.local() == local
    assert ref.api_host == ("registry-1.docker.io" if registry == "docker.io" else registry)


@pytest.mark.parametrize("text", ["", "Debian", "app@sha256:12", "app:", "app:-x", "a//b", "/app", "app/",
                                  "host:99999999/app", "a" * 256, "app@md5:" + "a" * 32, "ex ample/app"])
def test_bad_references_are_one_usage_error(text):
    with pytest.raises(UsageError) as exc:
        parse(text)
    assert "\n" not in str(exc.value)


def test_platforms():
    assert platform_of("linux/arm64/v8") == ("linux", "arm64", "v8")
    assert platform_of(None)[0] == "linux"
    with pytest.raises(UsageError):
        platform_of("linux")
    index = {"manifests": [
        {"digest": "a", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        {"digest": "b", "platform": {"os": "unknown", "architecture": "unknown"}},
        {"digest": "c", "platform": {"os": "linux", "architecture": "amd64"}},
    ]}
    assert select_platform(index, ("linux", "amd64", None), "x")["digest"] == "c"
    assert select_platform(index, ("linux", "arm", "v7"), "x")["digest"] == "a"
    with pytest.raises(NotFound, match=r"no image for linux/s390x; it has: linux/arm/v7, linux/amd64$"):
        select_platform(index, ("linux", "s390x", None), "x")


def _commit(store, tree, parent, who, message):
    from layergit.store.rawobj import OBJ_COMMIT, commit_bytes

    return store.put(OBJ_COMMIT, commit_bytes(tree, [parent] if parent else [], who, who, message))


def test_records_rebuild_exact_commits_or_nothing():
    from layergit.store.image import write_image_tree

    store = MemStore()
    rootfs = store.put(2, b"")
    who = Signature("Ann", "ann@example.org", 1_700_000_000, 120)
    configs = [{"Env": ["A=1"]}, {"Env": ["A=1"], "User": "nobody"}]
    chain, parent = [], None
    for i, config in enumerate(configs):
        oid = _commit(store, write_image_tree(store, config, rootfs), parent, who, f"step {i}\n\nbody\n")
        info = SimpleNamespace(author=who, committer=who, message=f"step {i}\n\nbody\n")
        chain.append(SimpleNamespace(id=oid, commit=info, config=config))
        parent = oid

    class Writer(MemStore):
        def commit(self, tree, parents, author, committer, message):
            return _commit(self, tree, parents[0] if parents else None, author, message)

    doc = {provenance.KEY: json.loads(json.dumps(provenance.records(chain)))}
    assert provenance.rebuild(Writer(), doc, [rootfs, rootfs]) == parent
    assert provenance.rebuild(Writer(), doc, [rootfs]) is None  # not one record per entry
    other = store.put(2, b"100644 x\0" + b"\0" * 20)
    assert provenance.rebuild(Writer(), doc, [rootfs, other]) is None  # a layer changed in transit
    doc[provenance.KEY]["commits"][0]["author"][2] = "soon"
    assert provenance.rebuild(Writer(), doc, [rootfs, rootfs]) is None  # a record that does not check


def test_digest_refs_round_trip():
    ref = names.digest_ref("localhost:5000/team/app", D)
    assert ref == "refs/layergit/digests/localhost%3A5000/team/app/sha256-" + "ab" * 32
    assert names.from_digest_ref(ref) == ("localhost:5000/team/app", D)
    assert names.split_digest("docker.io/library/debian:12@" + D) == ("debian", D)
    assert names.split_digest("debian") is None
    with pytest.raises(UsageError):
        names.split_digest("debian@sha256:00")


@pytest.fixture
def auth_env(tmp_path, monkeypatch):
    for var in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def test_auth_files_as_podman_and_docker_keep_them(auth_env):
    assert auth.lookup("r.example") is None
    docker = auth_env / "home" / ".docker"
    docker.mkdir(parents=True)
    hub = base64.b64encode(b"bob:hub").decode()
    (docker / "config.json").write_text(json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": hub}},
                                                    "other": 1}))
    assert auth.lookup("docker.io") == Credentials("bob", "hub")
    path = auth.save("r.example", Credentials("ann", "pw:with:colons"))
    assert path == str(auth_env / "run" / "containers" / "auth.json")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert auth.lookup("r.example") == Credentials("ann", "pw:with:colons")
    auth.remove("r.example")
    assert auth.lookup("r.example") is None
    with pytest.raises(NotFound):
        auth.remove("r.example")
    (docker / "config.json").write_text("{nope")
    with pytest.raises(LgError, match="not valid JSON"):
        auth.lookup("docker.io")


def test_endpoints_as_podman_decides(tmp_path, monkeypatch):
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    conf = {"registry": [{"location": "insecure.example", "insecure": True,
                          "mirror": [{"location": "mirror.example/path"}]}]}
    only = settings.endpoints("r.example", conf=conf)
    assert [(e.secure, e.tls_verify) for e in only] == [(True, True)]
    assert [e.secure for e in settings.endpoints("127.0.0.1:5000", conf=conf)] == [True, False]
    assert [e.secure for e in settings.endpoints("localhost", conf=conf)] == [True, False]
    assert [(e.secure, e.tls_verify) for e in settings.endpoints("insecure.example", conf=conf)] == \
        [(True, False), (False, False)]
    assert settings.endpoints("r.example", tls_verify=False, conf=conf)[0].tls_verify is False
    assert settings.mirrors("insecure.example", conf) == ["mirror.example"]
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example,.corp")
    assert settings.endpoints("r.example", conf={})[0].proxy == "http://proxy:3128"
    assert settings.endpoints("a.internal.example", conf={})[0].proxy is None
    assert settings.endpoints("x.corp:5000", conf={})[0].proxy is None


def test_challenges_and_retry_after():
    assert parse_challenge('Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull"') \
        == ("bearer", {"realm": "https://auth.example/token", "service": "reg", "scope": "repository:a:pull"})
    assert parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})
    assert _retry_after("2") == 2.0
    assert _retry_after(None) is None
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert _retry_after("3600") is None


class _Body:
    def __init__(self, chunks):
        self.chunks = chunks

    def stream(self, n):
        yield from self.chunks

    def drain_conn(self):
        pass

    def release_conn(self):
        pass


def test_blob_stream_checks_digest_and_size_as_it_flows():
    data = b"x" * 1000
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert BlobStream(_Body([data[:10], data[10:]]), digest, 1000, "b").read() == data
    with pytest.raises(RegistryError, match="more than the 999 bytes"):
        BlobStream(_Body([data]), digest, 999, "b").read()
    with pytest.raises(RegistryError, match="1000 bytes, the manifest says 1001"):
        BlobStream(_Body([data]), digest, 1001, "b").read()
    with pytest.raises(RegistryError, match="does not match its digest"):
        BlobStream(_Body([data[:-1] + b"y"]), digest, 1000, "b").read()


def test_credential_helpers_are_asked_first(auth_env, monkeypatch):
    bin_dir = auth_env / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-lgtest"
    helper.write_text('#!/bin/sh\nread host\n[ "$host" = "helped.example" ] || exit 1\n'
                      'echo \'{"ServerURL":"helped.example","Username":"hu","Secret":"hs"}\'\n')
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    docker = auth_env / "home" / ".docker"
    docker.mkdir(parents=True)
    stored = base64.b64encode(b"file:pw").decode()
    (docker / "config.json").write_text(json.dumps({
        "credHelpers": {"helped.example": "lgtest"}, "credsStore": "lgtest",
        "auths": {"helped.example": {"auth": stored}, "other.example": {"auth": stored}}}))
    assert auth.lookup("helped.example") == Credentials("hu", "hs")
    assert auth.lookup("other.example") == Credentials("file", "pw")  # the store knows nothing of it
    assert auth.lookup("third.example") is None


def test_certs_d_gives_cas_and_client_certificates(tmp_path, monkeypatch):
    d = tmp_path / "certs.d" / "r.example:5000"
    d.mkdir(parents=True)
    for name in ("ca.crt", "client.cert", "client.key"):
        (d / name).write_text("x")
    monkeypatch.setattr(settings, "CERTS_DIRS", (str(tmp_path / "none"), str(tmp_path / "certs.d")))
    [endpoint] = settings.endpoints("r.example:5000", conf={})
    assert endpoint.ca_certs == str(d / "ca.crt")
    assert endpoint.client_cert == (str(d / "client.cert"), str(d / "client.key"))
