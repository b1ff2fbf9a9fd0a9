"""What lg reads from an image as root before the container's command runs is hostile input.

The image's /etc/passwd and /etc/group are read (as root, after pivot_root or setns)
to resolve ``-u``: a link to /dev/zero, a FIFO, a magic link to lg's own stdin or a
huge file must end in one clear line (exit 125) when a name must be looked up in it,
quickly, and never hang or exhaust memory, for lg run and lg exec alike; numeric ids
need no lookup and run.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from .runtime_helpers import IMAGE, rt, runtime_template  # noqa: F401

pytestmark = pytest.mark.root


def _image(rt, tmp_path, name: str, change) -> str:
    tree = tmp_path / f"tree-{name}"
    rt("checkout", "--mode", "0755", IMAGE, str(tree), timeout=60)
    change(tree / "etc")
    rt("commit", str(tree), "-t", name, timeout=120)
    return name


def _link(target: str):
    def change(etc):
        os.unlink(etc / "passwd")
        os.symlink(target, etc / "passwd")
    return change


def _fifo(etc):
    os.unlink(etc / "group")
    os.mkfifo(etc / "group")


def _huge(etc):
    with open(etc / "passwd", "ab") as f:
        f.truncate(5 << 20)


# kind -> (how the image is made hostile, the -u that needs that file, the error)
HOSTILE = {
    "zero": (_link("/dev/zero"), "app", "not a regular file"),
    "stdin": (_link("/proc/self/fd/0"), "app", "cannot read the image's /etc/passwd"),
    "fifo": (_fifo, "app:app", "not a regular file"),
    "huge": (_huge, "app", "larger than 4 MiB"),
}
# (not `id`: the image's own tools read the hostile files too; that is the image's business)
UID = ["grep", "^Uid", "/proc/self/status"]


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_user_database(rt, tmp_path, kind):
    change, user, message = HOSTILE[kind]
    image = _image(rt, tmp_path, kind, change)
    # stdin is a pipe lg would block on if it read it: nothing is ever written to it.
    proc = subprocess.run([rt.python, "-m", "cli", "run", "--rm", "--network", "none", "-u", user, image, *UID],
                          stdin=subprocess.PIPE, capture_output=True, env=rt.env(), timeout=30)
    err = proc.stderr.decode()
    assert proc.returncode == 125 and message in err and len(err.strip().splitlines()) == 1, (proc.returncode, err)
    rt.run_d("--name", f"c-{kind}", image, "sleep", "600")  # numeric ids need no lookup: root runs
    rt.wait_running(f"c-{kind}")
    proc = subprocess.run([rt.python, "-m", "cli", "exec", "-u", user, f"c-{kind}", *UID],
                          stdin=subprocess.PIPE, capture_output=True, env=rt.env(), timeout=30)
    # (lg exec prepares the process outside the container's PID namespace, where /proc/self of the
    # container's /proc does not exist: the magic link then reads as a missing file)
    assert proc.returncode == 125 and "the image's /etc/" in proc.stderr.decode(), proc.stderr
    assert rt.out("exec", "-u", "1000:1000", f"c-{kind}", *UID, timeout=60).split()[1] == "1000"


def test_symlinked_passwd_inside_the_image_still_works(rt, tmp_path):
    """An ordinary in-image symlink (as some distributions ship) resolves as before."""
    def move(etc):
        os.rename(etc / "passwd", etc / "passwd.real")
        os.symlink("passwd.real", etc / "passwd")
    image = _image(rt, tmp_path, "moved", move)
    assert rt.out("run", "--rm", "-u", "app", image, "id", "-u", timeout=60) == "1000\n"


# -- container references are names or ids, never paths -------------------------------------------


def test_container_references_are_never_paths(rt, tmp_path):
    """`lg rm ../../x` followed a link out of the root and removed a directory: every command that takes a
    container refuses a reference outside the grammar of names and ids in one line, before touching the disk."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("keep\n")
    link = tmp_path / "planted"
    link.symlink_to(victim)
    up = "../" * (len(rt.containers_dir.split("/")) + 2)
    refs = [f"{up}{str(link).lstrip('/')}", f"..{link}", "a/../b", "x" * 300, "-rf", ".hidden", ""]
    for ref in refs:
        for command in (["rm", "-f"], ["stop"], ["inspect"], ["logs"], ["kill"], ["diff"]):
            proc = rt(*command, ref, check=False, timeout=60)
            err = proc.stderr.decode()
            assert proc.returncode != 0 and len(err.strip().splitlines()) == 1, (command, ref, err)
    assert (victim / "keep").read_text() == "keep\n"
    proc = rt("run", "--rm", "--name", "x" * 129, IMAGE, "true", check=False, timeout=60)
    assert proc.returncode == 125 and b"at most 128" in proc.stderr  # lg run fails as docker run does


def test_a_name_link_that_holds_no_id_is_ignored(rt, tmp_path):
    """A name link in by-name whose target is not a container id (planted, or left half-written) names nothing."""
    victim = tmp_path / "victim"
    victim.mkdir()
    rt.run_d("--name", "real", IMAGE, "true")
    by_name = os.path.join(rt.containers_dir, "by-name")
    os.symlink(f"../../../../../..{victim}", os.path.join(by_name, "fake"))
    proc = rt("rm", "-f", "fake", check=False, timeout=60)
    assert proc.returncode == 1 and b"no such container: fake" in proc.stderr
    assert victim.is_dir()


# -- what the user hands lg is bounded and validated too -------------------------------------------


@pytest.mark.parametrize("flag, value", [
    ("--hostname", "evil\n10.0.0.1 bank.example"), ("--hostname", "a" * 65), ("--hostname", "-lead"),
    ("--network-alias", "a b"), ("--network-alias", "x\ny"), ("--network-alias", "a..b"),
])
def test_hostnames_and_aliases_are_dns_names(rt, flag, value):
    """A newline in --hostname or --network-alias injected lines into /etc/hosts files: refused in one line."""
    proc = rt("run", "--rm", flag, value, IMAGE, "true", check=False, timeout=60)
    assert proc.returncode == 125 and len(proc.stderr.decode().strip().splitlines()) == 1, proc.stderr
    assert not rt.container_ids()
    assert rt.out("run", "--rm", "--hostname", "ok-host.example", IMAGE, "hostname", timeout=60) == "ok-host.example\n"


def test_env_file_is_read_bounded(rt, tmp_path):
    """--env-file /dev/zero read 11 GB: now at most 1 MiB, then one line; a pipe still works."""
    for path, message, code in (("/dev/zero", "larger than 1 MiB", 125), (str(tmp_path), "is a directory", 2)):
        proc = rt("run", "--rm", "--env-file", path, IMAGE, "true", check=False, timeout=60)
        assert proc.returncode == code and message in proc.stderr.decode(), proc.stderr
    r, w = os.pipe()
    os.write(w, b"A=from a pipe\n")
    os.close(w)
    proc = subprocess.run([rt.python, "-m", "cli", "run", "--rm", "--network", "none", "--env-file", f"/dev/fd/{r}", IMAGE,
                           "sh", "-c", "echo $A"], pass_fds=(r,), capture_output=True, env=rt.env(), timeout=60)
    os.close(r)
    assert proc.stdout == b"from a pipe\n", proc.stderr


# -- ids and names out of range: one line, nothing left ---------------------------------------------


OUT_OF_RANGE = ["99999999999", "-1", "4294967295", "1:99999999999", "1:4294967295", "0:-1", "9" * 5000]


def test_user_ids_out_of_range_are_refused(rt):
    """-u 99999999999 was an internal error (OverflowError) when the container started, and
    -u 4294967295, which setresuid reads as "unchanged", ran the command as root. Every form is
    refused in one line before a container exists, for lg run, create and exec."""
    cid = rt.run_d("--name", "up", IMAGE, "sleep", "600")
    rt.wait_running(cid)
    for user in OUT_OF_RANGE:
        for args in (["run", "--rm", "--network", "none", "-u", user, IMAGE, "id"],
                     ["create", "-u", user, IMAGE, "id"], ["exec", "-u", user, cid, "id"]):
            proc = rt(*args, check=False, timeout=60)
            err = proc.stderr.decode()
            assert proc.returncode == 125 and "ids are 0 to 4294967294" in err, (args[0], user, err)
            assert len(err.strip().splitlines()) == 1 and len(err) < 200 and not proc.stdout, (args[0], user, err)
    assert rt.container_ids() == [cid]
    top = "4294967294:4294967294"  # the highest ids a kernel takes still run, as those ids
    assert rt.out("exec", "-u", top, cid, "id", "-u", timeout=60) == "4294967294\n"


def test_an_image_user_with_an_id_out_of_range_is_refused(rt, tmp_path):
    """The image's /etc/passwd and /etc/group are hostile too: an id of 4294967295 for a user ran
    it as root; a supplementary group out of range names no group."""
    def ids(etc):
        with open(etc / "passwd", "a") as f:
            f.write("wrap:x:4294967295:100:wrapped:/:/bin/sh\nbig:x:99999999999:100::/:/bin/sh\n"
                    "ok:x:1500:1500::/:/bin/sh\n")
        with open(etc / "group", "a") as f:
            f.write("wrapg:x:4294967295:ok\nokg:x:1500:\nextra:x:1600:ok\n")
    image = _image(rt, tmp_path, "ids", ids)
    for user, named in (("wrap", "'wrap' the id '4294967295'"), ("big", "'big' the id '99999999999'"),
                        ("ok:wrapg", "'wrapg' the id '4294967295'")):
        proc = rt("run", "--rm", "--network", "none", "-u", user, image, "id", check=False, timeout=60)
        err = proc.stderr.decode()
        assert proc.returncode == 125 and "the image's /etc/" in err and named in err, (user, err)
    out = rt.out("run", "--rm", "--network", "none", "-u", "ok", image, "sh", "-c", "id -u; id -G", timeout=60)
    assert out == "1500\n1500 1600\n"  # (wrapg, out of range, is left out of the groups)


def test_a_300_character_name_is_one_line(rt):
    for args, code in ((["create", "--name", "n" * 300, IMAGE, "true"], 125),
                       (["run", "--rm", "--name", "n" * 300, IMAGE, "true"], 125),
                       (["network", "create", "n" * 300], 2)):
        proc = rt(*args, check=False, timeout=60)
        err = proc.stderr.decode()
        assert proc.returncode == code and len(err.strip().splitlines()) == 1 and len(err) < 300, (args[0], err)
    assert not rt.container_ids()
