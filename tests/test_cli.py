"""The lg command line end to end, on the busybox fixture, as a user runs it.

Every test gets its own layergit root (the ``lg`` fixture) and looks at the store
with plain git where that is the clearest witness (refs, objects, reachability).
The second half checks bad input: one clear line on stderr, a non-zero exit, and
nothing written (refs, objects and checkout destinations unchanged).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from . import trees
from .conftest import Lg

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- helpers ---------------------------------------------------------------------


def store_path(lg) -> str:
    return os.path.join(lg.root, "store.git")


def git(lg, *args: str, check: bool = True, input: bytes | None = None) -> str:
    proc = subprocess.run(["git", "-C", store_path(lg), *args], input=input, capture_output=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout.decode()


def object_exists(lg, oid: str) -> bool:
    return subprocess.run(["git", "-C", store_path(lg), "cat-file", "-e", oid], capture_output=True).returncode == 0


def store_state(lg) -> tuple:
    """Everything a failed command must leave alone: refs, reflogs and object files."""
    refs = git(lg, "for-each-ref", "--format=%(refname) %(objectname)")
    files = []
    for sub in ("objects", "refs", "logs"):
        top = os.path.join(store_path(lg), sub)
        for dirpath, _, names in os.walk(top):
            for n in names:
                p = os.path.join(dirpath, n)
                files.append((os.path.relpath(p, store_path(lg)), os.lstat(p).st_size))
    packed = os.path.join(store_path(lg), "packed-refs")
    packed_text = open(packed).read() if os.path.exists(packed) else None
    return refs, sorted(files), packed_text


def commit(lg, src, tag, *extra) -> str:
    out = lg.out("commit", src, "-t", tag, *extra).strip()
    assert len(out) == 40 and all(c in "0123456789abcdef" for c in out), out
    return out


def file_bytes(root: str) -> int:
    """Bytes of regular files below root, hardlinks counted once (what lg calls an image's size)."""
    seen, total = set(), 0
    for dirpath, _, names in os.walk(root):
        for n in names:
            st = os.lstat(os.path.join(dirpath, n))
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def make_v2(root: str) -> dict:
    """Apply one change of every kind to a busybox copy; returns what changed, for assertions."""
    with open(os.path.join(root, "etc/hostname"), "a") as f:
        f.write("second line\n")
    os.chmod(os.path.join(root, "etc/group"), 0o600)
    os.chown(os.path.join(root, "etc/passwd"), 1000, 1000)
    os.utime(os.path.join(root, "var/www/index.html"), ns=(1_500_000_000_123_456_789,) * 2)
    os.unlink(os.path.join(root, "bin/ls"))
    os.mkdir(os.path.join(root, "newdir"))
    with open(os.path.join(root, "newdir/f"), "w") as f:
        f.write("new file\n")
    # file -> directory, file -> symlink (the files were created in v1 by add_srv)
    os.unlink(os.path.join(root, "srv/data.txt"))
    os.mkdir(os.path.join(root, "srv/data.txt"))
    with open(os.path.join(root, "srv/data.txt/inner"), "w") as f:
        f.write("inner\n" * 10)
    os.unlink(os.path.join(root, "srv/conf"))
    os.symlink("data.txt/inner", os.path.join(root, "srv/conf"))
    return {
        "layer_bytes": os.path.getsize(os.path.join(root, "etc/hostname")) + os.path.getsize(os.path.join(root, "newdir/f")) + os.path.getsize(os.path.join(root, "srv/data.txt/inner")),
    }


def add_srv(root: str) -> None:
    os.makedirs(os.path.join(root, "srv"))
    with open(os.path.join(root, "srv/data.txt"), "w") as f:
        f.write("data\n")
    with open(os.path.join(root, "srv/conf"), "w") as f:
        f.write("conf=1\n")


V2_NAME_STATUS = [
    "D\t/bin/ls",
    "M\t/etc/group",
    "M\t/etc/hostname",
    "M\t/etc/passwd",
    "A\t/newdir",
    "A\t/newdir/f",
    "T\t/srv/conf",
    "T\t/srv/data.txt",
    "A\t/srv/data.txt/inner",
]


@pytest.fixture(scope="session")
def v2_template(tmp_path_factory, busybox_rootfs):
    """Made once by lg itself: x:v1 with two commits, the busybox base (plus /srv) and a second with every kind of change."""
    top = tmp_path_factory.mktemp("v2-template")
    src = str(top / "rootfs")
    subprocess.run(["cp", "-a", busybox_rootfs, src], check=True)
    add_srv(src)
    v1_bytes = file_bytes(src)
    maker = Lg(str(top / "root"))
    first = commit(maker, src, "x:v1", "-m", "base image")
    facts = make_v2(src)
    second = commit(maker, src, "x:v1", "-m", "second version\n\nwith a body")
    return {"root": maker.root, "src": src, "first": first, "second": second, "v1_bytes": v1_bytes, "v2_bytes": file_bytes(src), **facts}


def _clone_template(lg, tmp_path, template: dict) -> dict:
    """This test's own copy of a template root and source tree (cp -a keeps every piece of metadata)."""
    shutil.copytree(template["root"], lg.root, symlinks=True)
    src = str(tmp_path / "rootfs")
    subprocess.run(["cp", "-a", template["src"], src], check=True)
    return dict(template, root=lg.root, src=src)


@pytest.fixture
def two_versions(lg, tmp_path, v2_template):
    """x:v1 with two commits (see v2_template), in this test's own root."""
    return _clone_template(lg, tmp_path, v2_template)


# -- commit, tag, images, log, show ----------------------------------------------


def test_commit_moves_tag_like_a_branch(lg, two_versions):
    """Two commits on one tag chain: the tag points at the second, whose only parent is the first."""
    v = two_versions
    assert git(lg, "rev-parse", "refs/heads/x/v1").strip() == v["second"]
    assert git(lg, "rev-parse", f"{v['second']}^").strip() == v["first"]
    assert git(lg, "log", "--format=%s", "refs/heads/x/v1").splitlines() == ["second version", "base image"]
    # plain git sees the image layout: config.json and rootfs/
    assert git(lg, "ls-tree", "--name-only", v["second"]).split() == ["config.json", "rootfs"]
    assert git(lg, "show", f"{v['second']}:rootfs/etc/hostname").endswith("second line\n")


def test_commit_json_and_unchanged_tree(lg, two_versions):
    """--json describes the commit; an unchanged tree is refused (one line, nothing written) unless --allow-empty."""
    v = two_versions
    before = store_state(lg)
    err = lg.fails("commit", v["src"], "-t", "x:v1")
    assert "nothing changed" in err
    assert store_state(lg) == before
    out = json.loads(lg.out("commit", v["src"], "-t", "x:v1", "--allow-empty", "--json"))
    assert set(out) >= {"id", "tree", "parent", "tag", "entries", "bytes"}
    assert out["parent"] == v["second"] and out["tag"] == "x:v1"
    assert out["bytes"] == v["v2_bytes"]
    assert git(lg, "rev-parse", f"{out['id']}^{{tree}}").strip() == git(lg, "rev-parse", f"{v['second']}^{{tree}}").strip() == out["tree"]


def test_commit_author_message_and_parent(lg, two_versions, tmp_path):
    """--author and -m land in the commit; --parent picks the parent instead of the tag's tip."""
    v = two_versions
    other = tmp_path / "other"
    other.mkdir()
    (other / "hello").write_text("hello\n")
    oid = commit(lg, other, "x:v1", "--author", "Jane Doe <jane@example.com>", "-m", "from scratch", "--parent", "x:v1~1")
    info = json.loads(lg.out("show", oid, "--json"))
    assert info["author"] == "Jane Doe <jane@example.com>"
    assert info["message"] == "from scratch"
    assert info["parents"] == [v["first"]]
    assert git(lg, "rev-parse", "refs/heads/x/v1").strip() == oid


def test_images_json_fields(lg, two_versions):
    """lg images --json lists name, tag, id, created, size (regular-file bytes, hardlinks once) and labels; -q prints
    short ids."""
    v = two_versions
    lg("tag", "x:v1", "y")
    rows = json.loads(lg.out("images", "--json"))
    assert [(r["name"], r["tag"]) for r in rows] == [("x", "v1"), ("y", "latest")]
    for r in rows:
        assert set(r) == {"name", "tag", "id", "created", "size", "digests", "labels"}
        assert r["labels"] == {}
        assert r["id"] == v["second"]
        assert r["size"] == v["v2_bytes"]
        created = datetime.fromisoformat(r["created"])
        assert created.tzinfo is not None
        assert abs((datetime.now(timezone.utc) - created).total_seconds()) < 600
    assert lg.out("images", "-q").split() == [v["second"][:12]] * 2
    table = lg.out("images").splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert table[1].split()[:3] == ["x", "v1", v["second"][:12]]


def test_log_order_limit_and_json(lg, two_versions):
    """lg log is newest first; -n limits; --json gives each layer's own size (bytes it added or rewrote)."""
    v = two_versions
    entries = json.loads(lg.out("log", "x:v1", "--json"))
    assert [e["id"] for e in entries] == [v["second"], v["first"]]
    assert entries[0]["parents"] == [v["first"]] and entries[1]["parents"] == []
    assert entries[0]["message"] == "second version\n\nwith a body"
    assert entries[1]["size"] == v["v1_bytes"]
    assert entries[0]["size"] == v["layer_bytes"]
    assert [e["id"] for e in json.loads(lg.out("log", "x:v1", "--json", "-n", "1"))] == [v["second"]]
    assert json.loads(lg.out("log", "x:v1", "--json", "-n", "0")) == []
    oneline = lg.out("log", "x:v1", "--oneline").splitlines()
    assert len(oneline) == 3  # header + 2
    assert oneline[1].startswith(v["second"][:12]) and oneline[1].rstrip().endswith("second version")
    assert oneline[2].startswith(v["first"][:12]) and oneline[2].rstrip().endswith("base image")
    text = lg.out("log", "x:v1", "-n", "1")
    assert f"commit {v['second']}" in text and v["first"] not in text


def test_a_commit_keeps_its_layer_size_for_log(lg, tmp_path):
    """lg commit leaves the layer's size where lg log reads it, first commit and next, so
    the first log of a big tree does not walk it; the figure is the one log computes."""
    src = tmp_path / "src"
    os.makedirs(src / "a")
    (src / "a" / "one").write_bytes(b"1" * 1000)
    first = commit(lg, src, "s:1")
    (src / "a" / "two").write_bytes(b"2" * 300)
    second = commit(lg, src, "s:1")
    sizes = os.path.join(lg.root, "cache", "sizes")
    kept = {oid: int(open(os.path.join(sizes, f"layer-{oid}")).read()) for oid in (first, second)}
    assert kept == {first: 1000, second: 300}
    for oid in kept:
        os.unlink(os.path.join(sizes, f"layer-{oid}"))
    assert {e["id"]: e["size"] for e in json.loads(lg.out("log", "s:1", "--json"))} == kept


@pytest.mark.parametrize("cache", ["sizes", "stat"])
def test_a_cache_that_cannot_be_written_fails_no_commit(lg, tmp_path, cache):
    """The size and stat caches are kept after the commit's objects (the sizes after its
    tag moved): a file where their directory should be makes the commit neither fail
    nor half-land, and lg images and lg log compute what they would have read."""
    src = tmp_path / "src"
    os.makedirs(src / "a")
    (src / "a" / "one").write_bytes(b"1" * 1000)
    os.makedirs(os.path.join(lg.root, "cache"), exist_ok=True)
    with open(os.path.join(lg.root, "cache", cache), "w") as f:
        f.write("in the way\n")
    first = commit(lg, src, "s:1")
    (src / "a" / "two").write_bytes(b"2" * 300)
    second = commit(lg, src, "s:1")
    assert [e["id"] for e in json.loads(lg.out("log", "s:1", "--json"))] == [second, first]
    assert {e["id"]: e["size"] for e in json.loads(lg.out("log", "s:1", "--json"))} == {first: 1000, second: 300}
    assert "s:1" in lg.out("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    assert os.path.isfile(os.path.join(lg.root, "cache", cache)), "what was in the way stays"


def test_show_json(lg, two_versions):
    """lg show --json has the config, parents, rootfs tree, author and size of one commit."""
    v = two_versions
    info = json.loads(lg.out("show", "x:v1", "--json"))
    assert info["id"] == v["second"]
    assert info["parents"] == [v["first"]]
    assert info["config"] == {}
    assert info["rootfs"] == git(lg, "rev-parse", f"{v['second']}:rootfs").strip()
    assert info["tree"] == git(lg, "rev-parse", f"{v['second']}^{{tree}}").strip()
    assert info["size"] == v["v2_bytes"]
    assert "<" in info["author"] and info["author"].endswith(">")
    base = json.loads(lg.out("show", "x:v1~1", "--json"))
    assert base["parents"] == [] and base["id"] == v["first"]
    text = lg.out("show", "x:v1")
    assert f"commit {v['second']}" in text and "config.json:" in text


# -- revisions -------------------------------------------------------------------


def _id(lg, rev: str) -> str:
    return json.loads(lg.out("show", rev, "--json"))["id"]


def test_revision_suffixes_and_ids(lg, two_versions):
    """~N, ^, ^N, full ids and short ids (12, 7, and the shortest unique >= 4 digits) all name the right commit."""
    v = two_versions
    assert _id(lg, "x:v1") == v["second"]
    assert _id(lg, "x:v1~1") == v["first"]
    assert _id(lg, "x:v1^") == v["first"]
    assert _id(lg, "x:v1^1") == v["first"]
    assert _id(lg, "x:v1~0") == v["second"]
    assert _id(lg, v["second"]) == v["second"]
    assert _id(lg, v["second"] + "~1") == v["first"]
    assert _id(lg, v["first"][:12]) == v["first"]
    assert _id(lg, v["first"][:7]) == v["first"]
    all_ids = git(lg, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)").split()
    for n in range(4, 41):
        prefix = v["second"][:n]
        if sum(1 for o in all_ids if o.startswith(prefix)) == 1:
            break
    assert _id(lg, prefix) == v["second"]
    # a short id shared by two objects is refused, not guessed
    from collections import Counter

    shared = [p for p, c in Counter(o[:4] for o in all_ids).items() if c > 1]
    if shared:
        assert "ambiguous" in lg.fails("show", shared[0])
    # an id that names a tree, not a commit
    rootfs = git(lg, "rev-parse", f"{v['second']}:rootfs").strip()
    assert lg.fails("show", rootfs)
    assert lg.fails("log", "x:v1~2")
    assert lg.fails("show", "x:v1^2")


def test_image_name_wins_over_short_id(lg, two_versions):
    """As in Docker, a bare word is first an image name: an image named like another commit's short id resolves to the image."""
    v = two_versions
    lookalike = v["first"][:7]
    lg("tag", "x:v1", lookalike)
    assert _id(lg, lookalike) == v["second"]
    assert _id(lg, f"{lookalike}:latest") == v["second"]
    assert _id(lg, v["first"][:9]) == v["first"]  # a longer prefix is no image: it is the commit


def test_registry_names_uppercase_tags_and_escaping(lg, busybox_copy):
    """Registry names with ports, uppercase tags and tags git refuses (a..b, x.lock, end.) round-trip through refs and lg images."""
    oid = commit(lg, busybox_copy, "localhost:5000/team/app:v1")
    names = ["localhost:5000/team/app", "registry.example.com/lib/app:1.0", "x:V1", "x:a..b", "x:foo.lock", "x:end.", "x:Mixed_Case-1.2"]
    for n in names[1:]:
        lg("tag", "localhost:5000/team/app:v1", n)
    lg("tag", "localhost:5000/team/app:v1", "localhost:5000/team/app")  # :latest
    refs = set(git(lg, "for-each-ref", "--format=%(refname)").split())
    assert "refs/heads/localhost%3A5000/team/app/v1" in refs
    assert "refs/heads/localhost%3A5000/team/app/latest" in refs
    assert "refs/heads/x/V1" in refs
    assert "refs/heads/x/a%2E%2Eb" in refs
    assert "refs/heads/x/foo%2Elock" in refs
    assert "refs/heads/x/end%2E" in refs
    rows = {(r["name"], r["tag"]) for r in json.loads(lg.out("images", "--json"))}
    assert rows == {
        ("localhost:5000/team/app", "v1"),
        ("localhost:5000/team/app", "latest"),
        ("registry.example.com/lib/app", "1.0"),
        ("x", "V1"),
        ("x", "a..b"),
        ("x", "foo.lock"),
        ("x", "end."),
        ("x", "Mixed_Case-1.2"),
    }
    for name, tag in rows:
        assert _id(lg, f"{name}:{tag}") == oid
    assert _id(lg, "localhost:5000/team/app") == oid
    # names and tags are distinct images: x:V1 is not x:v1
    assert "no such image" in lg.fails("show", "x:v1")
    # plain git can read the escaped ref
    assert git(lg, "rev-parse", "refs/heads/x/a%2E%2Eb").strip() == oid


def test_clashing_names_refused_cleanly(lg, busybox_copy, tmp_path):
    """x:v1 and x/v1:foo would need refs/heads/x/v1 as file and directory: refused with one line naming the clash, nothing written."""
    commit(lg, busybox_copy, "x:v1")
    other = tmp_path / "other"
    other.mkdir()
    (other / "f").write_text("f\n")
    before = store_state(lg)
    err = lg.fails("tag", "x:v1", "x/v1:foo")
    assert "cannot coexist" in err
    assert store_state(lg) == before
    err = lg.fails("commit", other, "-t", "x/v1:foo")
    assert "cannot coexist" in err, err
    assert store_state(lg) == before


# -- diff --------------------------------------------------------------------------


def test_diff_name_status_exact(lg, two_versions):
    """--name-status prints exactly STATUS<TAB>/path lines: A, M, D, and T for file->directory and file->symlink."""
    v = two_versions
    assert lg.out("diff", "x:v1", "--name-status").splitlines() == V2_NAME_STATUS
    assert lg.out("diff", "x:v1~1", "x:v1", "--name-status").splitlines() == V2_NAME_STATUS
    assert lg.out("diff", v["first"], v["second"], "--name-status").splitlines() == V2_NAME_STATUS
    reverse = lg.out("diff", "x:v1", "x:v1~1", "--name-status").splitlines()
    assert "A\t/bin/ls" in reverse and "D\t/newdir/f" in reverse and "T\t/srv/conf" in reverse and "D\t/srv/data.txt/inner" in reverse
    assert lg.out("diff", "x:v1", "x:v1", "--name-status") == ""
    # a root commit diffs against nothing: everything is added
    first = lg.out("diff", "x:v1~1", "--name-status").splitlines()
    assert "A\t/bin/busybox" in first and all(line.startswith("A\t/") for line in first)


def test_diff_metadata_only_changes_json(lg, two_versions):
    """chmod and chown are M with aspect mode / owner in --json; content changes say content; old and new metadata are given."""
    data = json.loads(lg.out("diff", "x:v1", "--json"))
    assert data["old"] == two_versions["first"] and data["new"] == two_versions["second"]
    changes = {c["path"]: c for c in data["changes"]}
    assert changes["/etc/group"]["status"] == "M" and changes["/etc/group"]["aspects"] == ["mode"]
    assert (changes["/etc/group"]["old"]["mode"], changes["/etc/group"]["new"]["mode"]) == ("0644", "0600")
    assert changes["/etc/passwd"]["aspects"] == ["owner"]
    assert (changes["/etc/passwd"]["new"]["uid"], changes["/etc/passwd"]["new"]["gid"]) == (1000, 1000)
    assert changes["/etc/hostname"]["aspects"] == ["content"]
    assert changes["/srv/conf"]["status"] == "T" and changes["/srv/conf"]["new"]["type"] == "l"
    assert changes["/srv/data.txt"]["new"]["type"] == "d"
    assert data["config"] == {}


def test_diff_mtime_only_hidden_unless_asked(lg, two_versions):
    """A file whose only change is its mtime is not reported, unless --mtime is given (then as M with aspect mtime)."""
    assert "/var/www/index.html" not in lg.out("diff", "x:v1", "--name-status")
    assert "/var/www/index.html" not in lg.out("diff", "x:v1")
    with_mtime = lg.out("diff", "x:v1", "--name-status", "--mtime").splitlines()
    assert "M\t/var/www/index.html" in with_mtime
    assert set(V2_NAME_STATUS) <= set(with_mtime)
    changes = {c["path"]: c for c in json.loads(lg.out("diff", "x:v1", "--json", "--mtime"))["changes"]}
    assert changes["/var/www/index.html"]["aspects"] == ["mtime"]
    assert changes["/var/www/index.html"]["new"]["mtime_ns"] == 1_500_000_000_123_456_789


def test_diff_path_filter(lg, two_versions):
    """`-- /etc` limits the diff to that subtree (several paths allowed), for two revisions and for one."""
    etc = ["M\t/etc/group", "M\t/etc/hostname", "M\t/etc/passwd"]
    assert lg.out("diff", "x:v1~1", "x:v1", "--name-status", "--", "/etc").splitlines() == etc
    assert lg.out("diff", "x:v1", "--name-status", "--", "/etc").splitlines() == etc
    assert lg.out("diff", "x:v1", "--name-status", "--", "etc/").splitlines() == etc
    assert lg.out("diff", "x:v1", "--name-status", "--", "/etc", "/newdir").splitlines() == etc + ["A\t/newdir", "A\t/newdir/f"]
    assert lg.out("diff", "x:v1", "--name-status", "--", "/nonexistent") == ""
    # /et is not a prefix of /etc in path terms
    assert lg.out("diff", "x:v1", "--name-status", "--", "/et") == ""


def test_diff_default_report_and_stat(lg, two_versions):
    """The default report shows a unified diff for a text change and describes metadata changes; --stat summarises."""
    out = lg.out("diff", "x:v1")
    lines = out.splitlines()
    assert lines[0] == f"diff {two_versions['first'][:12]} {two_versions['second'][:12]}"
    assert "--- a/etc/hostname" in out and "+++ b/etc/hostname" in out
    assert any(line.strip() == "+second line" for line in lines)
    assert any(line.strip() == "busybox" for line in lines)  # context line
    assert "M /etc/group (mode 0644 -> 0600)" in out
    assert "M /etc/passwd (owner 0:0 -> 1000:1000)" in out
    assert "D /bin/ls" in out and "T /srv/conf" in out
    stat_out = lg.out("diff", "x:v1", "--stat")
    assert " 9 paths changed: 3 added, 3 modified, 1 deleted, 2 type changed; " in stat_out
    assert " M /etc/hostname" in stat_out


def _commit_with_config(lg, parent: str, config: dict, message: str = "config change") -> str:
    """An image commit with a new config.json and the parent's rootfs, made with git plumbing."""
    blob = git(lg, "hash-object", "-w", "--stdin", input=(json.dumps(config, indent=2, sort_keys=True) + "\n").encode()).strip()
    rootfs = git(lg, "rev-parse", f"{parent}:rootfs").strip()
    tree = git(lg, "mktree", input=f"100644 blob {blob}\tconfig.json\n040000 tree {rootfs}\trootfs\n".encode()).strip()
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@e", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@e")
    proc = subprocess.run(["git", "-C", store_path(lg), "commit-tree", tree, "-p", parent, "-m", message], capture_output=True, env=env, check=True)
    return proc.stdout.decode().strip()


def test_diff_config_changes_and_inheritance(lg, two_versions, tmp_path):
    """Config changes appear in diff --json and the report; a new commit on top inherits its parent's config."""
    cfg = {"Cmd": ["/bin/sh", "-c", "httpd -f"], "Env": ["A=1"], "ExposedPorts": {"80/tcp": {}}}
    oid = _commit_with_config(lg, two_versions["second"], cfg)
    git(lg, "update-ref", "refs/heads/x/cfg", oid)
    data = json.loads(lg.out("diff", "x:v1", "x:cfg", "--json"))
    assert data["changes"] == []
    assert data["config"] == {"Cmd": {"old": None, "new": cfg["Cmd"]}, "Env": {"old": None, "new": ["A=1"]}, "ExposedPorts": {"old": None, "new": {"80/tcp": {}}}}
    report = lg.out("diff", "x:cfg")
    assert "config Cmd: None -> ['/bin/sh', '-c', 'httpd -f']" in report
    assert "config: " in lg.out("diff", "x:cfg", "--stat")
    assert lg.out("diff", "x:cfg", "--name-status") == ""
    # commit on top of the configured image: config is carried over
    src = tmp_path / "next"
    lg("checkout", "x:cfg", src)
    (src / "etc" / "motd").write_text("hi\n")
    new = commit(lg, src, "x:cfg")
    assert json.loads(lg.out("show", new, "--json"))["config"] == cfg
    assert json.loads(lg.out("diff", "x:cfg", "--json"))["config"] == {}


# -- checkout, tag, rmi, gc ----------------------------------------------------------


def test_checkout_each_version(lg, two_versions, tmp_path):
    """checkout materialises any version exactly (v2 equals the source; v1 lacks v2's changes)."""
    from .treecompare import assert_same_tree

    lg("checkout", "x:v1", tmp_path / "v2", "--mode", trees.root_mode(two_versions["src"]))
    assert_same_tree(two_versions["src"], tmp_path / "v2")
    lg("checkout", "x:v1~1", tmp_path / "v1")
    assert os.path.islink(tmp_path / "v1" / "bin" / "ls")
    assert not os.path.exists(tmp_path / "v1" / "newdir")
    assert (tmp_path / "v1" / "srv" / "data.txt").read_text() == "data\n"
    # an existing empty directory is fine too
    (tmp_path / "empty").mkdir()
    lg("checkout", two_versions["second"][:12], tmp_path / "empty")
    assert_same_tree(two_versions["src"], tmp_path / "empty", mtimes=False)


def test_tag_moves_existing_tag(lg, two_versions):
    """lg tag SRC DST creates DST, and moves it when it already exists (like docker tag); the move is in the reflog."""
    v = two_versions
    lg("tag", "x:v1~1", "y:stable")
    assert _id(lg, "y:stable") == v["first"]
    lg("tag", "x:v1", "y:stable")
    assert _id(lg, "y:stable") == v["second"]
    lg("tag", v["first"][:12], "y:stable")
    assert _id(lg, "y:stable") == v["first"]
    lg("tag", "y:stable", "y:stable")  # a no-op
    assert _id(lg, "y:stable") == v["first"]
    assert _id(lg, "x:v1") == v["second"]  # the source is untouched
    reflog = git(lg, "reflog", "show", "--format=%H", "refs/heads/y/stable").split()
    assert reflog[:3] == [v["first"], v["second"], v["first"]]


def test_rmi_keeps_objects_until_gc(lg, two_versions, tmp_path):
    """rmi removes the name only; the commit stays readable until lg gc finds it unreachable and removes it."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "unique").write_text("only in the removed image " + os.urandom(8).hex())
    gone = commit(lg, other, "gone:v1")
    blob = git(lg, "rev-parse", f"{gone}:rootfs/unique").strip()
    out = lg.out("rmi", "gone:v1")
    assert out.strip() == f"Untagged: gone:v1 ({gone[:12]})"
    assert "gone" not in lg.out("images")
    assert object_exists(lg, gone) and object_exists(lg, blob)
    assert _id(lg, gone) == gone  # still addressable by id
    lg("gc")
    assert not object_exists(lg, gone)
    assert not object_exists(lg, blob)
    # what is still named survives, whole
    assert object_exists(lg, two_versions["second"]) and object_exists(lg, two_versions["first"])
    lg("fsck")
    git(lg, "fsck", "--strict")  # raises unless git is content too
    lg("checkout", "x:v1~1", tmp_path / "after-gc")


def test_gc_keeps_the_cached_rootfs_of_every_version_a_name_reaches(lg, two_versions, tmp_path):
    """The materialised cache keeps the rootfs of each commit a ref reaches, a tag's
    older versions too (lg run x:v1~1 mounts it), and drops that of a removed image."""
    from layergit import api

    other = tmp_path / "other"
    other.mkdir()
    (other / "unique").write_text("only in the removed image\n")
    commit(lg, other, "gone:v1")
    repo = api.open_repo(lg.root)
    cached = {rev: os.path.basename(api.materialise(repo, rev)) for rev in ("x:v1", "x:v1~1", "gone:v1")}
    assert len(set(cached.values())) == 3
    lg("rmi", "gone:v1")
    lg("gc")
    left = set(os.listdir(os.path.join(lg.root, "cache", "rootfs")))
    assert left == {cached["x:v1"], cached["x:v1~1"]}


def test_rmi_several_and_unknown(lg, two_versions):
    """rmi takes several names; an unknown one fails the whole command (one line) and removes nothing."""
    lg("tag", "x:v1", "a")
    lg("tag", "x:v1", "b:1")
    before = store_state(lg)
    assert "no such image" in lg.fails("rmi", "a", "nosuch:tag")
    assert store_state(lg) == before
    lg("rmi", "a", "b:1")
    assert [(r["name"], r["tag"]) for r in json.loads(lg.out("images", "--json"))] == [("x", "v1")]


def test_root_option_beats_lg_root(lg, busybox_copy, tmp_path):
    """--root overrides $LG_ROOT; without it $LG_ROOT is used, and the other root is not even created."""
    other = str(tmp_path / "other-root")
    oid = lg.out("--root", other, "commit", busybox_copy, "-t", "r:1").strip()
    assert os.path.isdir(os.path.join(other, "store.git"))
    assert not os.path.exists(os.path.join(lg.root, "store.git"))
    assert subprocess.run(["git", "-C", os.path.join(other, "store.git"), "rev-parse", "refs/heads/r/1"], capture_output=True, text=True).stdout.strip() == oid
    assert "no such image" in lg.fails("show", "r:1")  # via LG_ROOT: a different, empty root
    assert json.loads(lg.out("--root", other, "show", "r:1", "--json"))["id"] == oid
    env = lg.env(LG_ROOT=other)
    assert json.loads(lg.out("show", "r:1", "--json", env=env))["id"] == oid


def test_help_is_light_and_lists_commands():
    """lg --help lists every command and imports none of pygit2, pyroute2, dulwich or rich."""
    code = (
        "import sys\n"
        "sys.argv = ['lg', '--help']\n"
        "import cli.main as m\n"
        "try:\n    m.main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(k for k in sys.modules if k.split('.')[0] in ('pygit2', '_pygit2', 'pyroute2', 'dulwich', 'rich'))\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=dict(os.environ, COLUMNS="200"))
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY=\n" in proc.stdout, proc.stdout
    for cmd in ("commit", "tag", "rmi", "images", "log", "show", "diff", "checkout", "fsck", "gc"):
        assert f"  {cmd} " in proc.stdout
    # the same through the real entry point, with python's import log
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "cli", "--help"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0
    imported = [line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line]
    assert not [m for m in imported if m.split(".")[0] in ("pygit2", "_pygit2", "pyroute2", "dulwich", "rich")]


def test_big_file_commit_and_import_load_no_libgit2(lg, tmp_path):
    """A file past STREAM_FROM is streamed into the pack; asking whether a store has it
    must not load libgit2 (tens of ms of every such commit, import and pull)."""
    from layergit.store.rawobj import STREAM_FROM

    src = tmp_path / "src"
    src.mkdir()
    (src / "big").write_bytes(os.urandom(1024) * (STREAM_FROM // 1024 + 1))
    (src / "small").write_text("x")

    def loads_libgit2(*args, root):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "cli", *args], capture_output=True,
                              text=True, cwd=REPO, env=lg.env(LG_ROOT=root))
        assert proc.returncode == 0, proc.stderr
        imported = [line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line]
        return [m for m in imported if m.split(".")[0] in ("pygit2", "_pygit2")]

    assert not loads_libgit2("commit", str(src), "-t", "big:1", root=lg.root)  # a new store: every object new
    lg.out("export", "big:1", "-o", str(tmp_path / "big.tar"))
    assert not loads_libgit2("import", str(tmp_path / "big.tar"), "-t", "big:2", root=str(tmp_path / "other"))
    assert json.loads(lg.out("show", "big:2", "--json", env=lg.env(LG_ROOT=str(tmp_path / "other"))))["id"]
    big_id = git(lg, "rev-parse", "refs/heads/big/1:rootfs/big").strip()
    other = os.path.join(tmp_path, "other", "store.git")
    for store in (store_path(lg), other):
        assert subprocess.run(["git", "-C", store, "cat-file", "-e", big_id]).returncode == 0, store


def test_a_full_disk_while_an_import_seals_its_pack_moves_no_tag(lg, tmp_path):
    """ENOSPC as the pack gets its index, once the rootfs is materialised beside the
    sealing: one line, no tag, and nothing left of the import: no pack, no temporary
    file, no cached rootfs (its objects are not in the store)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("content\n")
    lg("commit", str(src), "-t", "sealed:1")
    lg("export", "sealed:1", "-o", str(tmp_path / "sealed.tar"))
    other = tmp_path / "other"
    rootfs = other / "cache" / "rootfs"
    code = (
        "import errno, os, sys, time\n"
        "import layergit.store.pack as p\n"
        "def full(self, pack_sum):\n"
        "    deadline = time.monotonic() + 10\n"  # once materialising has made the tree
        "    while time.monotonic() < deadline:\n"
        "        try:\n"
        f"            if [n for n in os.listdir({str(rootfs)!r}) if n[0] != '.']:\n"
        "                break\n"
        "        except FileNotFoundError:\n"  # materialising has not made the cache yet
        "            pass\n"
        "        time.sleep(0.01)\n"
        "    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
        "p.PackWriter._index_bytes = full\n"
        f"sys.argv = ['lg', 'import', {str(tmp_path / 'sealed.tar')!r}, '-t', 'sealed:2']\n"
        "import cli.main as m\n"
        "m.main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env=lg.env(LG_ROOT=str(other)))
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "no space left on device" in proc.stderr.lower() and "internal error" not in proc.stderr, proc.stderr
    assert lg.out("images", "-q", env=lg.env(LG_ROOT=str(other))).strip() == ""
    assert os.listdir(other / "store.git" / "objects" / "pack") == []
    assert [n for n in os.listdir(rootfs) if not n.startswith(".")] == []
    lg("fsck", env=lg.env(LG_ROOT=str(other)))


def test_version(lg):
    """lg --version prints the package version and exits 0."""
    from layergit import __version__

    out = lg.out("--version")
    assert __version__ in out and out.startswith("lg")


# -- bad input: one line, non-zero, nothing written -----------------------------------


@pytest.fixture(scope="session")
def base_template(tmp_path_factory, busybox_rootfs):
    """Made once by lg itself: x:v1 holding the busybox rootfs."""
    top = tmp_path_factory.mktemp("base-template")
    src = str(top / "rootfs")
    subprocess.run(["cp", "-a", busybox_rootfs, src], check=True)
    maker = Lg(str(top / "root"))
    return {"root": maker.root, "src": src, "id": commit(maker, src, "x:v1", "-m", "base")}


@pytest.fixture
def base(lg, tmp_path, base_template):
    """x:v1 (busybox) in this test's own root, and a private copy of its source."""
    return _clone_template(lg, tmp_path, base_template)


@pytest.mark.parametrize(
    "args, expect",
    [
        (["log", "nosuch"], "no such image"),
        (["show", "nosuch:v9"], "no such image"),
        (["show", "deadbeefdeadbeef"], "no such image"),
        (["diff", "x:v1", "nosuch"], "no such image"),
        (["tag", "nosuch", "y"], "no such image"),
        (["log", "x:v1~5"], "no parent"),
        (["log", "x:v1", "-n", "-1"], "-1"),
        (["tag", "x:v1", "UPPER:case"], "invalid image name"),
        (["tag", "x:v1", "a:b:c"], "invalid"),
        (["tag", "x:v1", "-x"], "-x"),
        (["tag", "x:v1", "x:.hidden"], "invalid tag"),
        (["rmi", "nosuch"], "no such image"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_input_one_line_nothing_written(lg, base, args, expect):
    """Each malformed or unknown argument fails with one clear line on stderr, a non-zero exit, and no store change."""
    before = store_state(lg)
    err = lg.fails(*args)
    assert expect in err, err
    assert err.startswith("lg: ") or err.startswith("Error"), err
    assert store_state(lg) == before


@pytest.mark.parametrize(
    "tag, expect",
    [("UPPER:case", "invalid image name"), ("a:b:c", "invalid"), ("-x", "invalid image name"), ("x:" + "t" * 129, "invalid tag"), ("x@sha256:00", "digest")],
)
def test_commit_bad_tag(lg, base, tag, expect):
    """lg commit -t with a name Docker's grammar refuses: one line, exit 2, nothing written."""
    before = store_state(lg)
    (open(os.path.join(base["src"], "changed"), "w")).write("so the tree differs\n")
    err = lg.fails("commit", base["src"], "-t", tag, code=2)
    assert expect in err, err
    assert store_state(lg) == before


def test_commit_missing_source(lg, base, tmp_path):
    """A source directory that does not exist: one line naming it, nothing written."""
    before = store_state(lg)
    err = lg.fails("commit", tmp_path / "nope", "-t", "x:v1")
    assert "nope" in err
    assert store_state(lg) == before


def test_commit_source_is_a_file(lg, base, tmp_path):
    """A source that is a regular file: one line saying it is not a directory, nothing written."""
    (tmp_path / "afile").write_text("x")
    before = store_state(lg)
    err = lg.fails("commit", tmp_path / "afile", "-t", "x:v1")
    assert "afile" in err
    assert store_state(lg) == before


@pytest.mark.parametrize("author", ["nobody", "<a@b>", "Name <a@b", "Name a@b>", "Name <a@b> trailing", ""])
def test_commit_bad_author(lg, base, author):
    """A malformed --author: one line, non-zero exit, no commit and no objects."""
    with open(os.path.join(base["src"], "changed"), "w") as f:
        f.write("so the tree differs\n")
    before = store_state(lg)
    err = lg.fails("commit", base["src"], "-t", "x:v1", "--author", author)
    assert "author" in err, err
    assert store_state(lg) == before


def test_commit_unknown_parent(lg, base):
    """--parent naming nothing: one line, nothing written."""
    with open(os.path.join(base["src"], "changed"), "w") as f:
        f.write("so the tree differs\n")
    before = store_state(lg)
    assert "no such image" in lg.fails("commit", base["src"], "-t", "x:v1", "--parent", "nosuch")
    assert store_state(lg) == before


@pytest.mark.parametrize("how", [[], ["-H"]])
def test_checkout_into_non_empty_directory(lg, base, tmp_path, how):
    """checkout into a directory with something in it: one line, and the directory is
    exactly as before; a hardlinked one says so before it materialises the image."""
    from .treecompare import describe

    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine\n")
    before = describe(str(dest))
    err = lg.fails("checkout", *how, "x:v1", dest)
    assert "not empty" in err
    assert describe(str(dest)) == before
    rootfs = os.path.join(lg.root, "cache", "rootfs")
    assert not os.path.isdir(rootfs) or os.listdir(rootfs) == [], "materialised before it refused"


def test_checkout_into_existing_file(lg, base, tmp_path):
    """checkout onto an existing file: one line, and the file is untouched."""
    dest = tmp_path / "afile"
    dest.write_text("precious\n")
    st = os.stat(dest)
    err = lg.fails("checkout", "x:v1", dest)
    assert "not a directory" in err
    assert dest.read_text() == "precious\n" and os.stat(dest).st_mtime_ns == st.st_mtime_ns


def test_checkout_into_missing_parent(lg, base, tmp_path):
    """checkout into a path whose parent does not exist: one line naming it, nothing created."""
    err = lg.fails("checkout", "x:v1", tmp_path / "nope" / "deeper")
    assert "nope" in err
    assert not os.path.lexists(tmp_path / "nope")


def test_checkout_unknown_revision_creates_nothing(lg, base, tmp_path):
    """checkout of an unknown revision fails before creating the destination."""
    err = lg.fails("checkout", "x:nosuch", tmp_path / "dest")
    assert "no such image" in err
    assert not os.path.lexists(tmp_path / "dest")


def test_usage_errors_are_one_line(lg, base):
    """Click-level usage errors (missing argument, unknown option, unknown command) also fit on one line."""
    for args in (["commit"], ["nosuchcommand"], ["images", "--nosuchflag"], ["diff"]):
        before = store_state(lg)
        lg.fails(*args)
        assert store_state(lg) == before


def test_debug_shows_traceback(lg, base):
    """--debug trades the one-line error for the full traceback."""
    proc = lg("--debug", "show", "nosuch", check=False)
    assert proc.returncode != 0
    assert b"Traceback" in proc.stderr
