"""RUN --mount and lg build --secret (issue 20), proved from the outside on the busybox
fixture: what the step saw, what the image holds, and what is left under the root."""

from __future__ import annotations

import os
import subprocess

import pytest

from .test_build import base, checkout, ctx, step_lines, write  # noqa: F401

pytestmark = pytest.mark.root

SECRET = "s3cr3t-" + os.urandom(8).hex()


def build(lg, ctx, *args, env: dict | None = None) -> str:
    return lg.out("build", "--progress", "plain", *args, str(ctx), env=env)


def _everything_under(root: str) -> bytes:
    """Every file's bytes under the root, and every object of its store as git reads it."""
    out = bytearray()
    for top, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(top, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as f:
                    out += f.read()
    store = os.path.join(root, "store.git")
    ids = subprocess.run(["git", "--git-dir", store, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)"],
                         check=True, capture_output=True).stdout.split()
    batch = subprocess.run(["git", "--git-dir", store, "cat-file", "--batch"], input=b"\n".join(ids) + b"\n",
                           check=True, capture_output=True).stdout
    return bytes(out) + batch


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "token"  # outside the root: the attack reads only the root
    path.write_text(SECRET)
    return path


def test_secret_reaches_the_step_and_nothing_stored(lg, base, ctx, tmp_path, secret_file):  # noqa: F811
    write(ctx, {"Dockerfile": (
        f"FROM {base}\n"
        "RUN --mount=type=secret,id=tok cat /run/secrets/tok > /seen-file\n"
        "RUN --mount=type=secret,id=tok,target=/t,mode=0440,uid=7,gid=8 stat -c '%a %u %g' /t > /seen-mode\n"
        "RUN --mount=type=secret,id=viaenv,env=TOKEN echo \"$TOKEN\" | wc -c > /seen-env\n"
        "RUN --mount=type=secret,id=missing test ! -e /run/secrets/missing\n"
    )})
    env = lg.env(MY_TOKEN=SECRET)
    out = build(lg, ctx, "-t", "s:1", "--secret", f"id=tok,src={secret_file}", "--secret", "id=viaenv,env=MY_TOKEN",
                env=env)
    co = checkout(lg, "s:1", tmp_path)
    # The step saw the secret (a file it wrote into the image holds it: the user's own doing).
    assert (co / "seen-file").read_text() == SECRET
    assert (co / "seen-mode").read_text().split() == ["440", "7", "8"]
    assert int((co / "seen-env").read_text()) == len(SECRET) + 1
    assert not (co / "run" / "secrets").exists() and not (co / "t").exists()
    assert SECRET.encode() in _everything_under(lg.root)  # the next test's attack does see the store
    # A rebuild with another secret value is cached, as in BuildKit.
    secret_file.write_text("other")
    out = build(lg, ctx, "-t", "s:1", "--secret", f"id=tok,src={secret_file}", "--secret", "id=viaenv,env=MY_TOKEN",
                env=env)
    assert len(step_lines(out, "CACHED")) == 4  # every RUN
    # A required secret not given: one line, nothing built.
    write(ctx, {"Dockerfile": f"FROM {base}\nRUN --mount=type=secret,id=need,required=true true\n"})
    assert "secret need not found" in lg.fails("build", str(ctx))


def test_secret_is_nowhere_under_the_root_after_a_build(lg, base, ctx, secret_file):  # noqa: F811
    # The Dockerfile never names the value: the attack looks for the secret itself.
    write(ctx, {"Dockerfile": (
        f"FROM {base}\n"
        "RUN --mount=type=secret,id=tok test -s /run/secrets/tok && cp /run/secrets/tok /dev/null\n"
        "RUN --mount=type=secret,id=tok,env=TOK test -n \"$TOK\"\n"
        "RUN --mount=type=secret,id=tok,target=/etc/deep/key test -s /etc/deep/key\n"
        "RUN --mount=type=secret,id=MY_TOKEN,required test -s /run/secrets/MY_TOKEN\n"
    )})
    shm = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    build(lg, ctx, "-t", "s:2", "--secret", f"id=tok,src={secret_file}", "--secret", "id=MY_TOKEN",
          env=lg.env(MY_TOKEN=SECRET))
    assert SECRET.encode() not in _everything_under(lg.root)
    after = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    assert not [n for n in after - shm if n.startswith("lg-secret-")]


def test_cache_mount_persists_per_id_and_stays_out_of_the_layer(lg, base, ctx, tmp_path):  # noqa: F811
    dockerfile = (
        f"FROM {base}\n"
        "ARG N\n"
        "RUN --mount=type=cache,target=/var/cache/app,id=apps,mode=0700,uid=5 "
        "echo $N >> /var/cache/app/runs && cat /var/cache/app/runs | wc -l > /count "
        "&& stat -c '%a %u' /var/cache/app > /cache-mode\n"
        "RUN --mount=type=cache,target=/other,id=apps cat /other/runs | wc -l > /count2\n"
        "RUN --mount=type=cache,target=/c2,sharing=locked ls /c2 | wc -l > /count3\n"
        f"RUN --mount=type=cache,target=/seeded,from={base},source=/etc,sharing=private"
        " cat /seeded/passwd | head -1 > /seed && echo x >> /seeded/passwd\n"
    )
    write(ctx, {"Dockerfile": dockerfile})
    build(lg, ctx, "-t", "c:1", "--build-arg", "N=1")
    build(lg, ctx, "-t", "c:2", "--build-arg", "N=2")
    co = checkout(lg, "c:2", tmp_path)
    assert int((co / "count").read_text()) == 2  # the first build's run is still there
    assert int((co / "count2").read_text()) == 2  # the same id is the same cache
    assert int((co / "count3").read_text()) == 0  # another id is another cache
    assert (co / "cache-mode").read_text().split() == ["700", "5"]
    assert (co / "seed").read_text().startswith("root:")  # from= filled the cache once, on creation
    assert (co / "etc" / "passwd").read_bytes().count(b"\nx\n") == 0 and not (co / "seeded").exists()
    assert not (co / "var" / "cache" / "app").exists() or not any((co / "var" / "cache" / "app").iterdir())
    assert not (co / "other").exists() and not (co / "c2").exists()
    # lg fsck knows the directory: a killed build's half-made cache is a note lg gc
    # acts on, a stranger a problem.
    mounts = os.path.join(lg.root, "cache", "build-mounts")
    assert [n for n in os.listdir(mounts) if not n.endswith(".lock")]
    lg("fsck")
    os.mkdir(os.path.join(mounts, ".new-killed"))
    assert "killed build" in lg.out("fsck")
    lg("gc")
    assert not os.path.exists(os.path.join(mounts, ".new-killed"))
    open(os.path.join(mounts, "stranger"), "w").close()
    assert "stranger" in lg("fsck", check=False).stdout.decode() + lg("fsck", check=False).stderr.decode()
    os.unlink(os.path.join(mounts, "stranger"))
    # lg system prune drops the cache mounts.
    lg("system", "prune", "-f")
    assert not os.path.exists(mounts) or not os.listdir(mounts)


def test_bind_mounts_of_context_stage_and_image_are_read_only_unless_rw(lg, base, ctx, tmp_path):  # noqa: F811
    write(ctx, {
        "src/a.txt": "from-context\n",
        "secret.key": "ignored\n",
        ".dockerignore": "secret.key\n",
        "Dockerfile": (
            f"FROM {base} AS tools\n"
            "RUN mkdir /out && echo from-stage > /out/s.txt\n"
            f"FROM {base}\n"
            "RUN --mount=target=/ctx cat /ctx/src/a.txt > /got-ctx && ls /ctx > /ctx-list"
            " && (touch /ctx/new 2>/dev/null && echo writable || echo ro) > /ctx-ro\n"
            "RUN --mount=type=bind,from=tools,source=/out,target=/st cat /st/s.txt > /got-stage\n"
            f"RUN --mount=type=bind,from={base},source=/bin/busybox,target=/bb test -x /bb && echo yes > /got-image\n"
            "RUN --mount=type=bind,source=src,target=/w,rw echo scribble > /w/a.txt && cat /w/a.txt > /got-rw\n"
            "RUN --mount=type=bind,source=src,target=/w cat /w/a.txt > /got-after\n"
            "RUN --mount=type=tmpfs,target=/scratch,size=1m echo t > /scratch/f && df -k /scratch | tail -1 > /tmpfs\n"
        ),
    })
    build(lg, ctx, "-t", "b:1")
    co = checkout(lg, "b:1", tmp_path)
    assert (co / "got-ctx").read_text() == "from-context\n"
    assert "secret.key" not in (co / "ctx-list").read_text().split()
    assert (co / "ctx-ro").read_text() == "ro\n"
    assert (co / "got-stage").read_text() == "from-stage\n"
    assert (co / "got-image").read_text() == "yes\n"
    assert (co / "got-rw").read_text() == "scribble\n"
    assert (co / "got-after").read_text() == "from-context\n"  # rw writes were dropped
    assert (ctx / "src" / "a.txt").read_text() == "from-context\n"
    assert (co / "tmpfs").read_text().split()[1] == "1024"
    for gone in ("ctx", "st", "bb", "w", "scratch"):
        assert not (co / gone).exists(), gone
    # A changed bind source reruns the step that mounts it (and those after it), not the others.
    write(ctx, {"src/a.txt": "changed\n"})
    out = build(lg, ctx, "-t", "b:2")
    assert any("target=/ctx" in s for s in step_lines(out, "DONE"))
    assert any("mkdir /out" in s for s in step_lines(out, "CACHED"))
    assert (checkout(lg, "b:2", tmp_path) / "got-after").read_text() == "changed\n"
    assert not [n for n in os.listdir(os.path.join(lg.root, "tmp")) if n.startswith("build-mount-")]


def test_bad_mounts_and_secrets_are_one_line(lg, base, ctx, tmp_path):  # noqa: F811
    images = lg.out("images", "-q")
    write(ctx, {"Dockerfile": f"FROM {base}\nRUN --mount=type=nfs,target=/x true\n"})
    assert "type must be one of" in lg.fails("build", str(ctx))
    write(ctx, {"Dockerfile": f"FROM {base}\nRUN --mount=type=bind,from=nosuch,target=/x true\n"})
    assert "no such stage or image" in lg.fails("build", str(ctx))
    # ../.. is the context itself, cleaned as BuildKit cleans it: never what is above it.
    write(ctx, {"Dockerfile": f"FROM {base}\nRUN --mount=source=../..,target=/x test -f /x/Dockerfile"
                              " && test ! -e /x/ctx\n"})
    lg("build", str(ctx))
    images = lg.out("images", "-q")
    assert "cannot read" in lg.fails("build", "--secret", f"id=a,src={tmp_path}/none", str(ctx), code=2)
    assert "id=ID" in lg.fails("build", "--secret", "src=", str(ctx), code=2)
    assert lg.out("images", "-q") == images
