"""lg as an ordinary user (issue 21): a real user with a subordinate range, through setpriv."""

from __future__ import annotations

import json
import os

import pytest

from .rootless_user import rangeless_user, rootless_user, ulg  # noqa: F401  (fixtures)

pytestmark = pytest.mark.root  # making users takes root; lg itself runs as the user

# What a tree looks like from inside the namespace: path -> (type and mode, uid, gid, content or target)
DESCRIBE = r"""
import hashlib, json, os, stat, sys
out = {}
for top in sys.argv[1:]:
    tree = {}
    for d, dirs, files in os.walk(top):
        for n in sorted(dirs + files) + ([] if d != top else ['.']):
            p = os.path.join(d, n) if n != '.' else d
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                what = hashlib.sha256(open(p, 'rb').read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                what = os.readlink(p)
            else:
                what = ''
            tree[os.path.relpath(p, top)] = [st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns if not stat.S_ISLNK(st.st_mode) else 0, what]
    out[top] = tree
print(json.dumps(out))
"""


def _seen_inside(ulg, *trees: str) -> dict:
    return json.loads(ulg.out("unshare", "python3", "-c", DESCRIBE, *trees))


def test_unshare_maps_the_user_to_root_and_its_range(ulg, rootless_user):
    out = ulg.out("unshare", "cat", "/proc/self/uid_map", "/proc/self/gid_map").split()
    assert out == ["0", str(rootless_user.uid), "1", "1", str(rootless_user.subuid), "65536",
                   "0", str(rootless_user.gid), "1", "1", str(rootless_user.subgid), "65536"]
    # the run directory falls back to /tmp without XDG_RUNTIME_DIR, private to the user
    run = f"/tmp/layergit-run-{rootless_user.uid}"
    st = os.lstat(run)
    assert st.st_uid == rootless_user.uid and st.st_mode & 0o777 == 0o700
    # a second lg joins the same namespace (one pause process per user)
    first = ulg.out("unshare", "readlink", "/proc/self/ns/user")
    assert ulg.out("unshare", "readlink", "/proc/self/ns/user") == first
    assert ulg("unshare", "sh", "-c", "exit 7", check=False).returncode == 7


def test_a_tree_of_several_owners_keeps_them_exactly(ulg, rootless_user):
    user = rootless_user
    src = os.path.join(user.home, "src-owners")
    ulg("unshare", "sh", "-c", f"""set -e
        mkdir -p {src}/www {src}/home/me
        echo page > {src}/www/index.html; echo key > {src}/home/me/key
        ln -s ../www/index.html {src}/home/me/link
        chown -R 33:33 {src}/www; chown -R 1000:1000 {src}/home/me; chown -h 1000:33 {src}/home/me/link
        chown 0:65535 {src}/home; chmod 4750 {src}/www/index.html; chmod 0711 {src}/home/me""")
    ulg("commit", src, "-t", "owners")
    dest = os.path.join(user.home, "dest-owners")
    ulg("checkout", "owners", dest)
    seen = _seen_inside(ulg, src, dest)
    del seen[src]["."], seen[dest]["."]  # a checkout with a setuid file is made private
    assert seen[src] == seen[dest]
    assert seen[dest]["www/index.html"][1:3] == [33, 33]
    assert seen[dest]["home/me/key"][1:3] == [1000, 1000]
    assert seen[dest]["home/me/link"][1:3] == [1000, 33]
    assert seen[dest]["home"][2] == 65535
    # on disk, the owners are the mapped host ids
    st = os.lstat(os.path.join(dest, "www", "index.html"))
    assert (st.st_uid, st.st_gid) == (user.host_uid(33), user.host_gid(33))
    assert os.lstat(dest).st_uid == user.uid
    # and in the store exactly 33, as root's lg would read it
    stored = {e["name"]: e for e in json.loads(ulg.out("ls", "--json", "owners", "/www"))}
    assert (stored["index.html"]["uid"], stored["index.html"]["gid"]) == (33, 33)
