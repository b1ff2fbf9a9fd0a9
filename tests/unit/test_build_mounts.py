"""RUN --mount and lg build --secret grammars (build.mounts), in process."""

from __future__ import annotations

import pytest

from layergit.build import gitsource
from layergit.build.dockerfile import DockerfileError
from layergit.build.gitsource import GitSource
from layergit.build.mounts import RunMount, SecretSource, parse_run_mount, parse_secret
from layergit.errors import UsageError


@pytest.mark.parametrize("text, want", [
    ("target=/ctx", RunMount("bind", "/ctx", readonly=True)),
    ("type=bind,src=a,dst=/w,rw", RunMount("bind", "/w", source="a", readonly=False)),
    ("type=bind,from=tools,source=/out,target=/st,readwrite=false",
     RunMount("bind", "/st", source="/out", from_="tools", readonly=True)),
    ("type=cache,target=/root/.cache", RunMount("cache", "/root/.cache", id="/root/.cache")),
    ("type=cache,target=c,id=pip,sharing=locked,mode=0700,uid=5,gid=6,from=base,source=/seed,ro",
     RunMount("cache", "/work/c", id="pip", sharing="locked", mode=0o700, uid=5, gid=6, from_="base",
              source="/seed", readonly=True)),
    ("type=secret,id=tok", RunMount("secret", "/run/secrets/tok", id="tok")),
    ("type=secret,target=/etc/key,mode=0440,uid=7,gid=8,required",
     RunMount("secret", "/etc/key", id="key", mode=0o440, uid=7, gid=8, required=True)),
    ("type=secret,id=tok,env=TOKEN", RunMount("secret", "", id="tok", env="TOKEN")),
    ("type=secret,id=tok,env=TOKEN,target=/t", RunMount("secret", "/t", id="tok", env="TOKEN")),
    ("type=tmpfs,target=/tmp/x,size=1m", RunMount("tmpfs", "/tmp/x", size=1 << 20)),
    ('type=bind,"target=/a,b"', RunMount("bind", "/a,b", readonly=True)),
])
def test_run_mount_fields_and_buildkit_defaults(text, want):
    assert parse_run_mount(text, "/work") == want


@pytest.mark.parametrize("text, message", [
    ("type=nfs,target=/x", "type must be one of"),
    ("type=bind", "target is required"),
    ("type=bind,target=/", "cannot replace"),
    ("type=tmpfs,target=/x,id=a", "id does not apply to type=tmpfs"),
    ("type=bind,target=/x,sharing=locked", "sharing does not apply"),
    ("type=cache,target=/x,sharing=sometimes", "sharing must be one of"),
    ("type=cache,target=/x,mode=999", "not an octal number"),
    ("type=cache,target=/x,mode=77777", "out of range"),
    ("type=cache,target=/x,uid=-1", "out of range"),
    ("type=secret", "needs an id or a target"),
    ("type=secret,id=a,required=maybe", "not a boolean"),
    ("type=tmpfs,target=/x,size=lots", "size"),
    ('type=bind,"target=/x', "comma-separated"),
    ("type=bind,source=,target=/x", "source needs a value"),
])
def test_bad_run_mounts_are_one_line(text, message):
    with pytest.raises(DockerfileError, match=message) as info:
        parse_run_mount(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text, environ, want", [
    ("id=tok,src=/run/tok", {}, SecretSource("tok", path="/run/tok")),
    ("id=tok,source=/run/tok,type=file", {}, SecretSource("tok", path="/run/tok")),
    ("src=/run/tok", {}, SecretSource("tok", path="/run/tok")),
    ("id=tok,env=MY", {}, SecretSource("tok", env="MY")),
    ("id=tok,type=env", {}, SecretSource("tok", env="tok")),
    ("id=TOKEN", {"TOKEN": "x"}, SecretSource("TOKEN", env="TOKEN")),
    ("id=TOKEN", {}, SecretSource("TOKEN", path="TOKEN")),
])
def test_secret_sources_as_buildx_reads_them(text, environ, want):
    assert parse_secret(text, environ) == want


@pytest.mark.parametrize("text, message", [
    ("", "id=ID"),
    ("src=", "id=ID"),
    ("id=a/b,src=/x", "id=ID is required"),
    ("id=a,src=/x,env=Y", "not both"),
    ("id=a,type=socket", "type must be file or env"),
    ("id=a,path=/x", "id=ID"),
])
def test_bad_secrets_are_one_line(text, message):
    with pytest.raises(UsageError, match=message):
        parse_secret(text, {})


def test_secret_values_are_bounded_and_missing_ones_named(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"x" * (500 * 1024 + 1))
    with pytest.raises(UsageError, match="larger than"):
        SecretSource("a", path=str(big)).read({})
    with pytest.raises(UsageError, match="cannot read"):
        SecretSource("a", path=str(tmp_path / "none")).read({})
    with pytest.raises(UsageError, match="MY is not set"):
        SecretSource("a", env="MY").read({})
    assert SecretSource("a", env="MY").read({"MY": "v"}) == b"v"


@pytest.mark.parametrize("src, want", [
    ("https://host/repo.git", GitSource("https://host/repo.git", "", "")),
    ("https://host/repo.git#v1.2:docs/", GitSource("https://host/repo.git", "v1.2", "docs")),
    ("git@github.com:o/r.git#main", GitSource("git@github.com:o/r.git", "main", "")),
    ("git://127.0.0.1:9418/r.git#0123abc", GitSource("git://127.0.0.1:9418/r.git", "0123abc", "")),
    ("ssh://git@host/r", GitSource("ssh://git@host/r", "", "")),
    ("file:///srv/r.git#refs/tags/v1", GitSource("file:///srv/r.git", "refs/tags/v1", "")),
    ("https://host/file.tar.gz", None),
    ("src/", None),
    ("/abs/repo.git", None),
])
def test_git_sources_as_buildkit_knows_them(src, want):
    assert gitsource.parse(src) == want


@pytest.mark.parametrize("src, message", [
    ("https://h/r.git#--upload-pack=x", "invalid git ref"),
    ("https://h/r.git#a b", "invalid git ref"),
    ("https://h/r.git#main:../up", "inside the repository"),
])
def test_bad_git_fragments_are_one_line(src, message):
    with pytest.raises(DockerfileError, match=message):
        gitsource.parse(src)
