"""Image archive manifests (fs/imagearchive.py) and what checkout calls privileged (fs/checkout.py)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile

import pytest

from layergit.fs import imagearchive as IA
from layergit.fs.checkout import CheckoutPolicy, RootOwner, privileged
from layergit.fs.tarlayer import ArchiveError
from layergit.store import meta as M


def archive(tmp_path, files: dict[str, bytes], links: dict[str, str] | None = None) -> str:
    path = str(tmp_path / "image.tar")
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


def docker(config: dict, layers: list[str], tags=("app:1",)) -> dict[str, bytes]:
    manifest = [{"Config": "config.json", "RepoTags": list(tags), "Layers": layers}]
    return {"manifest.json": json.dumps(manifest).encode(), "config.json": json.dumps(config).encode()}


def test_a_docker_archive_lists_its_images_and_layers(tmp_path):
    files = docker({"rootfs": {"diff_ids": ["sha256:" + "a" * 64, "sha256:" + "b" * 64]}}, ["l1/layer.tar", "l2/layer.tar"])
    files.update({"l1/layer.tar": b"one"})
    source = IA.TarSource(archive(tmp_path, files, {"l2/layer.tar": "../l1/layer.tar"}))
    assert IA.detect(source) == "docker-archive"
    (image,) = IA.read_images(source, "docker-archive")
    assert image.tags == ["app:1"] and [layer.name for layer in image.layers] == ["l1/layer.tar", "l2/layer.tar"]
    assert [layer.diff_id[7:8] for layer in image.layers] == ["a", "b"]
    assert image.layers[1].open().read() == b"one"  # docker save's link between duplicate layers


@pytest.mark.parametrize(
    "files, links, message",
    [
        ({}, {}, "neither a docker-archive"),
        ({"manifest.json": b"[]"}, {}, "lists no images"),
        ({"manifest.json": b"{not json"}, {}, "not valid JSON"),
        ({"manifest.json": b'[{"Config": "c.json"}]'}, {}, "lacks Config or Layers"),
        (docker({}, ["../../etc/passwd"]), {}, "'..'"),
        (docker({}, [7]), {}, "not a path"),
        (docker({"rootfs": {"diff_ids": ["sha256:" + "a" * 64]}}, []), {}, "disagree on the number of layers"),
        (docker({}, ["x"]), {"x": "../../outside"}, "outside the archive"),
        (docker({}, ["x"]), {"x": "y", "y": "x"}, "too many links"),
    ],
    ids=["empty", "no-images", "bad-json", "no-layers", "climbing-layer", "layer-not-str", "diff-id-count",
         "link-outside", "link-loop"],
)
def test_hostile_docker_archives_fail_in_one_line(tmp_path, files, links, message):
    source = IA.TarSource(archive(tmp_path, files, links))
    with pytest.raises(ArchiveError, match=message) as info:
        for image in IA.read_images(source, IA.detect(source)):
            for layer in image.layers:
                layer.open().read()
    assert "\n" not in str(info.value)


def oci_layout(tmp_path, manifest_patch=None, layer_type="application/vnd.oci.image.layer.v1.tar+gzip"):
    blobs = tmp_path / "layout" / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"digest": "sha256:" + digest, "size": len(data)}

    config = blob(b'{"config": {}}')
    layer = {"mediaType": layer_type, **blob(b"layer")}
    manifest = {"schemaVersion": 2, "config": config, "layers": [layer], **(manifest_patch or {})}
    desc = {**blob(json.dumps(manifest).encode()), "annotations": {"org.opencontainers.image.ref.name": "1"}}
    (tmp_path / "layout" / "index.json").write_text(json.dumps({"manifests": [desc]}))
    (tmp_path / "layout" / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return IA.DirSource(str(tmp_path / "layout"))


def test_an_oci_layout_is_read_and_its_digests_checked(tmp_path):
    source = oci_layout(tmp_path)
    assert IA.detect(source) == "oci"
    (image,) = IA.read_images(source, "oci")
    assert image.tags == ["1"] and image.layers[0].open().read() == b"layer"


@pytest.mark.parametrize(
    "patch, layer_type, message",
    [
        ({"config": {"digest": "sha256:" + "0" * 64}}, None, "no file"),
        ({"config": {"digest": "sha256:../../x"}}, None, "malformed digest"),
        ({"config": {"digest": "sha256:" + "0" * 64 + "\n"}}, None, "malformed digest"),
        ({"config": {"digest": "md5:abc"}}, None, "malformed digest"),
        ({"layers": "none"}, None, "lacks config or layers"),
        (None, "application/x-evil", "unsupported layer media type"),
    ],
)
def test_hostile_oci_layouts_fail_in_one_line(tmp_path, patch, layer_type, message):
    kw = {"layer_type": layer_type} if layer_type else {}
    source = oci_layout(tmp_path, patch, **kw)
    with pytest.raises(ArchiveError, match=message):
        IA.read_images(source, "oci")


def test_a_blob_that_lies_about_its_size_or_digest_is_refused(tmp_path):
    source = oci_layout(tmp_path)
    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    index["manifests"][0]["size"] += 1
    (tmp_path / "layout" / "index.json").write_text(json.dumps(index))
    with pytest.raises(ArchiveError, match="does not match"):
        IA.read_images(source, "oci")


def test_dir_source_never_follows_a_symlink_out(tmp_path):
    (tmp_path / "layout").mkdir()
    os.symlink("/etc", tmp_path / "layout" / "blobs")
    with pytest.raises(ArchiveError, match="without leaving it"):
        IA.DirSource(str(tmp_path / "layout")).open("blobs/passwd")


# -- checkout's view of privilege --------------------------------------------------------------


@pytest.mark.parametrize(
    "m, expected",
    [
        (M.EntryMeta("f", 0o4755, 0, 0, 0), True),
        (M.EntryMeta("f", 0o2755, 0, 0, 0), True),
        (M.EntryMeta("f", 0o755, 0, 0, 0, xattrs=(("security.capability", b"\1"),)), True),
        (M.EntryMeta("f", 0o777, 0, 0, 0), False),
        (M.EntryMeta("d", 0o4755, 0, 0, 0), False),
        (M.EntryMeta("b", 0o600, 0, 0, 0, rdev=(0, 0)), True),
        (M.EntryMeta("c", 0o666, 0, 0, 0, rdev=(1, 3)), True),
        (M.EntryMeta("c", 0o000, 0, 0, 0, rdev=(0, 0)), False),  # an overlayfs whiteout
        (M.EntryMeta("c", 0o000, 0, 0, 0), False),
        (M.EntryMeta("p", 0o666, 0, 0, 0), False),
    ],
)
def test_what_gives_more_than_its_owners_rights(m, expected):
    assert privileged(m) is expected


def test_the_checkout_directory_mode_is_the_hosts_decision(tmp_path):
    os.chmod(tmp_path, 0o755)
    st = os.stat(tmp_path)
    image_root = M.EntryMeta("d", 0o777, 1, 2, 3)
    assert CheckoutPolicy().root_meta(image_root, st, created=True).mode == 0o700
    assert CheckoutPolicy().root_meta(image_root, st, created=False).mode == 0o755
    # the owner and ACLs are the directory's own (the caller's, for a new one), unless the image's are asked for
    acl = (("system.posix_acl_access", b"\x02\0\0\0"), ("user.note", b"kept"))
    image_root = M.EntryMeta("d", 0o777, 1, 2, 3, xattrs=acl)
    mine = M.EntryMeta("d", 0o750, st.st_uid, st.st_gid, 3, xattrs=acl[1:])
    assert CheckoutPolicy(mode=0o750).root_meta(image_root, st, created=True) == mine
    image = CheckoutPolicy(mode=0o750, root_owner=RootOwner.IMAGE).root_meta(image_root, st, created=True)
    assert image == M.EntryMeta("d", 0o750, 1, 2, 3, xattrs=acl)
    here = M.EntryMeta("d", 0o700, st.st_uid, st.st_gid, st.st_mtime_ns)
    assert CheckoutPolicy().root_meta(None, st, created=True) == here
