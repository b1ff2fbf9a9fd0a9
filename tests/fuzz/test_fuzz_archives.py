"""Fuzzing the archive importer (porcelain/importer.py, fs/imagearchive.py) in process, into
a throw-away root: docker-archives and OCI layouts whose manifests, indexes and configs are
replaced by arbitrary JSON, whose layers are damaged tars, and whose outer tar is damaged
too. Each import gives images or one line, and a refused one leaves nothing behind: no
spool in the root's tmp dir, no temporary pack."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixtures import archives as A
from layergit.porcelain.importer import import_archive
from layergit.porcelain.repo import open_repo

from . import fuzz, outcome
from .tarbytes import mutated, tar_bytes

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70), st.floats(allow_nan=False),
                     st.text(max_size=12), st.sampled_from(["sha256:" + "0" * 64, "80/tcp", "/bin/sh", "PATH=/bin"]))
_JSON = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
_CONFIG_KEYS = ["Cmd", "Entrypoint", "Env", "User", "WorkingDir", "ExposedPorts", "Volumes", "Labels", "StopSignal",
                "Healthcheck", "Shell", "OnBuild", "ArgsEscaped"]


@st.composite
def runtime_configs(draw) -> dict:
    return {key: draw(_JSON) for key in draw(st.lists(st.sampled_from(_CONFIG_KEYS), max_size=4, unique=True))}


@st.composite
def _docker_mutation(draw):
    """A change to one JSON document of the archive, as ``mutate`` takes it."""
    target = draw(st.sampled_from(["manifest.json", "config", "nested", "bytes"]))
    value = draw(_JSON)
    depth = draw(st.integers(1, 3000))
    noise = draw(st.binary(max_size=40))

    def mutate(files):
        name = "manifest.json" if target == "manifest.json" else json.loads(files["manifest.json"])[0]["Config"]
        if target == "nested":
            files[name] = b"[" * depth + b"]" * depth
        elif target == "bytes":
            files[name] = files[name][: len(noise)] + noise
        elif target == "config":
            doc = json.loads(files[name])
            doc[draw_key] = value
            files[name] = json.dumps(doc).encode()
        else:
            files[name] = json.dumps(value).encode()

    draw_key = draw(st.sampled_from(["config", "history", "rootfs", "created", "architecture"]))
    return mutate


@st.composite
def archives(draw) -> bytes:
    layers = draw(st.lists(st.one_of(tar_bytes(), st.just(A.three_layers()[0])), min_size=0, max_size=3))
    hist = draw(st.one_of(st.none(), st.lists(st.fixed_dictionaries(
        {"created_by": _JSON, "author": _JSON, "created": st.one_of(_JSON, st.just("1969-12-31T23:59:59.5Z")),
         "empty_layer": st.booleans()}), max_size=4)))
    kw = {"runtime": draw(runtime_configs()), "hist": hist}
    if draw(st.booleans()):
        layout = A.docker_archive(layers, repo_tags=draw(st.lists(st.sampled_from(["fuzz:1", "a/b:c", "../x", "UP:1"]), max_size=2)),
                                  mutate=draw(st.one_of(st.none(), _docker_mutation())), **kw)
    else:
        layout = A.oci_layout(layers, ref_name=draw(st.sampled_from([None, "latest", "fuzz:2", "../x"])),
                              compression=draw(st.sampled_from([None, "gzip"])), **kw)
        what = draw(st.sampled_from(["none", "file", "manifest", "config"]))
        if what == "file":  # any file replaced: digests no longer match, mostly
            name = draw(st.sampled_from(sorted(layout)))
            layout[name] = draw(st.one_of(_JSON.map(lambda v: json.dumps(v).encode()), mutated(layout[name])))
        elif what != "none":  # a manifest or config that is any JSON, under an honest digest
            A.oci_relink(layout, what, json.dumps(draw(st.one_of(_JSON, st.dictionaries(st.sampled_from(
                ["config", "layers", "manifests", "annotations", "mediaType", "digest", "size"]), _JSON)))).encode())
    return layout


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return open_repo(str(tmp_path_factory.mktemp("fuzz-import") / "root"))


def _nothing_left(repo) -> None:
    tmp = repo.root.tmp
    assert not os.path.isdir(tmp) or not os.listdir(tmp), os.listdir(tmp)
    pack = os.path.join(repo.root.store, "objects", "pack")
    assert not [n for n in os.listdir(pack) if n.startswith("tmp_")], os.listdir(pack)


@fuzz(60)
@given(archives(), st.data())
def test_image_archives(repo, tmp_path_factory, layout, data):
    if data.draw(st.integers(0, 3)) == 0:  # a layout as a directory (its names are the fixture's, benign)
        where = tmp_path_factory.mktemp("d")
        outcome(import_archive, repo, layout.write_dir(where / "layout"))
        _nothing_left(repo)
        shutil.rmtree(where)
        return
    path = layout.write_tar(tmp_path_factory.mktemp("a") / "image.tar")
    if data.draw(st.integers(0, 4)) == 0:  # the outer tar damaged too
        with open(path, "rb") as f:
            damaged = data.draw(mutated(f.read()))
        with open(path, "wb") as f:
            f.write(damaged)
    outcome(import_archive, repo, path)
    _nothing_left(repo)
    os.unlink(path)


@fuzz(100)
@given(tar_bytes())
def test_rootfs_tars(repo, tmp_path_factory, data):
    path = tmp_path_factory.mktemp("r") / "rootfs.tar"
    path.write_bytes(data)
    outcome(import_archive, repo, str(path), "fuzz/rootfs:1", "rootfs")
    _nothing_left(repo)
