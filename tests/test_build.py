"""lg build (issue 6), proved from the outside: build, then look at the images.

Every build here is offline and runs on the busybox fixture: ADD of a URL is served
by an http.server on 127.0.0.1, archives are made by fixtures.archives. Tests that
run RUN steps need containers and are marked root.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import stat
import threading
import uuid

import pytest

from fixtures import archives as A

from .treecompare import describe


@pytest.fixture
def base(lg, busybox_rootfs) -> str:
    lg("commit", busybox_rootfs, "-t", "base:1")
    return "base:1"


@pytest.fixture
def ctx(tmp_path):
    path = tmp_path / "ctx"
    path.mkdir()
    return path


def write(root, files: dict) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())


def build(lg, ctx, *args) -> str:
    """Build with plain progress; returns the output."""
    return lg.out("build", "--progress", "plain", *args, str(ctx))


def image_id(lg, rev: str) -> str:
    return json.loads(lg.out("show", rev, "--json"))["id"]


def config(lg, rev: str) -> dict:
    return json.loads(lg.out("show", rev, "--json"))["config"]


def messages(lg, rev: str, n: int) -> list[str]:
    """The messages of the last ``n`` commits of ``rev``, oldest first."""
    return [e["message"] for e in json.loads(lg.out("log", rev, "--json", "-n", str(n)))][::-1]


def checkout(lg, rev: str, tmp_path):
    dest = tmp_path / f"co-{uuid.uuid4().hex[:8]}"
    lg("checkout", rev, str(dest))
    return dest


def step_lines(out: str, marker: str) -> list[str]:
    """Instructions of the steps whose status line is ``marker`` (CACHED or DONE)."""
    starts = dict(re.findall(r"^#(\d+) \[[^\]]*\] (.*)$", out, re.M))
    return [starts[n] for n in re.findall(rf"^#(\d+) {marker}\b", out, re.M)]


def run_output_lines(out: str) -> list[str]:
    return re.findall(r"^#\d+ \d+\.\d{3} (.*)$", out, re.M)


@pytest.fixture
def http_dir(tmp_path):
    """A directory served over HTTP on 127.0.0.1 for ADD URL; yields (dir, base URL)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def no_proxy(lg) -> dict:
    env = lg.env()
    for key in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(key, None)
    return env


@pytest.mark.root
def test_run_in_shell_exec_and_heredoc_form(lg, base, ctx, tmp_path):
    """RUN's three forms see declared ARGs and ENV; the log keeps RUN as written, other lines expanded."""
    (ctx / "Dockerfile").write_text(
        "FROM base:1\n"
        "ARG VERSION=1.0\n"
        "ENV APP_HOME=/opt/app \\\n"
        "    MODE=build\n"
        "# a comment inside the stage\n"
        'SHELL ["/bin/sh", "-c"]\n'
        'RUN mkdir -p $APP_HOME && echo "version $VERSION" > $APP_HOME/version\n'
        'RUN ["/bin/sh", "-c", "echo exec-form > /opt/app/exec"]\n'
        "RUN <<EOF\n"
        'echo "heredoc in $(pwd)" > /opt/app/heredoc\n'
        "EOF\n"
        "WORKDIR $APP_HOME\n"
    )
    build(lg, ctx, "--build-arg", "VERSION=2.0", "-t", "app:1")
    app = checkout(lg, "app:1", tmp_path) / "opt/app"
    assert (app / "version").read_text() == "version 2.0\n"
    assert (app / "exec").read_text() == "exec-form\n"
    assert (app / "heredoc").read_text() == "heredoc in /\n"
    assert config(lg, "app:1")["WorkingDir"] == "/opt/app"
    assert messages(lg, "app:1", 7) == [
        "ARG VERSION=1.0",
        "ENV APP_HOME=/opt/app     MODE=build",
        'SHELL ["/bin/sh", "-c"]',
        'RUN mkdir -p $APP_HOME && echo "version $VERSION" > $APP_HOME/version',
        'RUN ["/bin/sh", "-c", "echo exec-form > /opt/app/exec"]',
        'RUN <<EOF\necho "heredoc in $(pwd)" > /opt/app/heredoc\nEOF',
        "WORKDIR /opt/app",
    ]


@pytest.mark.root
def test_copy_and_add_place_globs_owners_heredocs_archives_and_urls(lg, base, ctx, tmp_path, http_dir):
    served, url = http_dir
    (served / "remote.txt").write_text("from the web\n")
    write(ctx, {"app/main.sh": "echo main\n", "app/data.txt": "data\n", "notes.md": "not copied\n"})
    os.chmod(ctx / "app/main.sh", 0o755)
    (ctx / "payload.tar").write_bytes(A.layer_tar([A.directory("pkg"), A.file("pkg/readme", b"vendored\n")]))
    (ctx / "Dockerfile").write_text(f"""\
FROM base:1
ENV MODE=build
WORKDIR /opt/app
COPY app/*.sh ./bin/
COPY --chown=app:app --chmod=640 app/data.txt data/
COPY <<EOF conf/app.conf
mode=$MODE
EOF
ADD payload.tar vendor/
ADD {url}/remote.txt remote/
""")
    lg.out("build", "-q", "-t", "app:1", str(ctx), env=no_proxy(lg))
    root = checkout(lg, "app:1", tmp_path)
    app = root / "opt/app"
    assert (app / "bin/main.sh").read_text() == "echo main\n" and os.stat(app / "bin/main.sh").st_mode & 0o777 == 0o755
    st = os.stat(app / "data/data.txt")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1000, 0o640)
    assert (app / "conf/app.conf").read_text() == "mode=build\n"
    assert (app / "vendor/pkg/readme").read_text() == "vendored\n"
    assert (app / "remote/remote.txt").read_text() == "from the web\n"
    assert stat.S_IMODE(os.stat(app / "remote/remote.txt").st_mode) == 0o600
    assert not list(root.rglob("notes.md"))
    # The here-document is in the log as written, its expansion only in the file.
    assert messages(lg, "app:1", 5) == [
        "COPY app/*.sh ./bin/",
        "COPY --chown=app:app --chmod=640 app/data.txt data/",
        "COPY <<EOF conf/app.conf\nmode=$MODE\nEOF",
        "ADD payload.tar vendor/",
        f"ADD {url}/remote.txt remote/",
    ]


def test_config_instructions_set_the_image_config_and_log_as_written(lg, base, ctx):
    (ctx / "Dockerfile").write_text("""\
FROM base:1
ARG VERSION
LABEL version=$VERSION
MAINTAINER Jane Doe <jane@example.org>
USER app
WORKDIR /srv/app
EXPOSE 8080 53/udp
VOLUME ["/data"]
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=5s --timeout=2s --retries=2 CMD ["/bin/true"]
ENTRYPOINT ["/bin/sh"]
CMD ["-c", "cat /srv/app/version"]
""")
    build(lg, ctx, "--build-arg", "VERSION=2.0", "-t", "app:1")
    cfg = config(lg, "app:1")
    assert cfg["Labels"] == {"version": "2.0", "maintainer": "Jane Doe <jane@example.org>"}
    assert cfg["User"] == "app" and cfg["WorkingDir"] == "/srv/app"
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert cfg["Volumes"] == {"/data": {}} and cfg["StopSignal"] == "SIGQUIT"
    assert cfg["Healthcheck"] == {"Test": ["CMD", "/bin/true"], "Interval": 5_000_000_000, "Timeout": 2_000_000_000, "Retries": 2}
    assert cfg["Entrypoint"] == ["/bin/sh"] and cfg["Cmd"] == ["-c", "cat /srv/app/version"]
    # One commit per instruction, variables expanded; FROM an image adds none.
    assert messages(lg, "app:1", 11) == [
        "ARG VERSION",
        "LABEL version=2.0",
        "MAINTAINER Jane Doe <jane@example.org>",
        "USER app",
        "WORKDIR /srv/app",
        "EXPOSE 8080 53/udp",
        'VOLUME ["/data"]',
        "STOPSIGNAL SIGQUIT",
        'HEALTHCHECK --interval=5s --timeout=2s --retries=2 CMD ["/bin/true"]',
        'ENTRYPOINT ["/bin/sh"]',
        'CMD ["-c", "cat /srv/app/version"]',
    ]
    assert messages(lg, "app:1", 12)[0] == messages(lg, "base:1", 1)[0]


@pytest.mark.root
def test_multistage_build_copies_between_stages_and_the_result_runs(lg, base, ctx, tmp_path):
    (ctx / "Dockerfile").write_text("""\
# syntax=docker/dockerfile:1
ARG BASE=base:1
FROM ${BASE} AS builder
ARG VERSION=1.0
RUN mkdir -p /opt/app && echo "version $VERSION" > /opt/app/version

FROM scratch AS empty
COPY --from=builder /opt/app/version /

FROM base:1
COPY --from=builder /opt/app /srv/app
COPY --from=empty /version /srv/
USER app
ENTRYPOINT ["/bin/sh"]
CMD ["-c", "cat /srv/app/version"]
""")
    out = build(lg, ctx, "--build-arg", "VERSION=2.0", "--build-arg", "NOBODY=1", "-t", "app:1")
    for label in ("#1 [builder 1/3] FROM base:1", "[empty 1/2] FROM scratch", "[stage-2 1/6] FROM base:1"):
        assert label in out
    assert "WARNING: build args not consumed by any ARG: NOBODY" in out
    assert re.search(r"^writing image [0-9a-f]{40}", out, re.M) and "naming to app:1" in out
    root = checkout(lg, "app:1", tmp_path)
    assert (root / "srv/app/version").read_text() == "version 2.0\n"
    assert (root / "srv/version").read_text() == "version 2.0\n"
    assert messages(lg, "app:1", 5)[:2] == ["COPY --from=builder /opt/app /srv/app", "COPY --from=empty /version /srv/"]
    # The image runs: its Entrypoint and Cmd, as its User.
    assert lg.out("run", "--rm", "app:1") == "version 2.0\n"


@pytest.mark.root
def test_onbuild_triggers_run_in_a_build_from_the_image_and_are_not_inherited(lg, base, ctx):
    (ctx / "Dockerfile").write_text("FROM base:1\nONBUILD RUN echo triggered\n")
    parent = lg.out("build", "-q", "-t", "parent:1", str(ctx)).strip()
    assert image_id(lg, "parent:1") == parent
    assert config(lg, "parent:1")["OnBuild"] == ["RUN echo triggered"]
    assert messages(lg, "parent:1", 1) == ["ONBUILD RUN echo triggered"]

    child = ctx / "child"
    child.mkdir()
    (child / "Dockerfile").write_text("FROM parent:1\nLABEL child=yes\n")
    out = build(lg, child, "-t", "child:1")
    assert "[2/3] RUN echo triggered" in out and run_output_lines(out) == ["triggered"]
    assert "OnBuild" not in config(lg, "child:1")
    (child / "Dockerfile").write_text("FROM child:1\nLABEL grandchild=yes\n")
    assert run_output_lines(build(lg, child, "-t", "grandchild:1")) == []


@pytest.mark.root
def test_cached_rebuild_runs_no_step_and_a_changed_copy_source_reruns_from_there(lg, base, ctx, tmp_path):
    write(ctx, {"a.txt": "one\n"})
    (ctx / "Dockerfile").write_text(
        "FROM base:1\n"
        "RUN date +%s%N > /stamp; echo ran first\n"
        "COPY a.txt /a.txt\n"
        "RUN cat /a.txt > /after; date +%s%N >> /after; echo ran second\n"
    )
    first = build(lg, ctx, "-t", "app:1")
    assert run_output_lines(first) == ["ran first", "ran second"]
    id1 = image_id(lg, "app:1")

    # Nothing changed: every step is CACHED, no command runs, the same commit comes out.
    again = build(lg, ctx, "-t", "app:1")
    assert step_lines(again, "CACHED") == ["RUN date +%s%N > /stamp; echo ran first", "COPY a.txt /a.txt", "RUN cat /a.txt > /after; date +%s%N >> /after; echo ran second"]
    assert run_output_lines(again) == [] and image_id(lg, "app:1") == id1

    # The cache is refs in the store: it survives losing the tag and lg gc.
    lg("rmi", "app:1")
    lg("gc")
    assert lg.out("build", "-q", str(ctx)).strip() == id1

    # A touched (same content) source still hits: mtimes are not part of the key.
    os.utime(ctx / "a.txt", ns=(1_000_000_000, 1_000_000_000))
    assert lg.out("build", "-q", str(ctx)).strip() == id1

    # Editing the COPY source re-runs that step and what follows, nothing before.
    (ctx / "a.txt").write_text("two\n")
    edited = build(lg, ctx, "-t", "app:2")
    assert step_lines(edited, "CACHED") == ["RUN date +%s%N > /stamp; echo ran first"]
    assert step_lines(edited, "DONE")[1:] == ["COPY a.txt /a.txt", "RUN cat /a.txt > /after; date +%s%N >> /after; echo ran second"]
    assert run_output_lines(edited) == ["ran second"]
    old, new = checkout(lg, id1, tmp_path), checkout(lg, "app:2", tmp_path)
    assert (old / "stamp").read_bytes() == (new / "stamp").read_bytes()
    assert (new / "after").read_text().startswith("two\n") and (old / "after").read_text().startswith("one\n")
    assert lg.out("log", "app:2", "-n", "1", "--json").count(id1) == 0

    # --no-cache runs everything again.
    fresh = build(lg, ctx, "--no-cache", "-t", "app:3")
    assert step_lines(fresh, "CACHED") == [] and run_output_lines(fresh) == ["ran first", "ran second"]


@pytest.mark.root
def test_failing_run_keeps_tags_and_earlier_steps(lg, base, ctx):
    (ctx / "Dockerfile").write_text("FROM base:1\nLABEL v=1\n")
    build(lg, ctx, "-t", "app:1")
    good = image_id(lg, "app:1")
    (ctx / "Dockerfile").write_text("FROM base:1\nRUN echo first > /first\nRUN echo about to fail; echo oops >&2; exit 7\nLABEL never=1\n")
    proc = lg("build", "--progress", "plain", "-t", "app:1", "-t", "other:1", str(ctx), check=False)
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 7
    assert len(err.strip().splitlines()) == 1
    assert "RUN echo about to fail" in err and "exit code: 7" in err and "Dockerfile:3" in err
    assert "about to fail" in run_output_lines(out) and "oops" in run_output_lines(out)
    assert re.search(r"^#3 ERROR: ", out, re.M)
    assert image_id(lg, "app:1") == good
    lg.fails("show", "other:1")
    assert json.loads(lg.out("ps", "-a", "--json")) == []

    (ctx / "Dockerfile").write_text("FROM base:1\nRUN echo first > /first\nRUN echo fixed\n")
    out = build(lg, ctx, "-t", "app:1")
    assert step_lines(out, "CACHED") == ["RUN echo first > /first"]
    assert run_output_lines(out) == ["fixed"]
    assert image_id(lg, "app:1") != good

    # A command that cannot run fails the same way, with Docker's code for it.
    for run in ("RUN /no/such/command", 'RUN ["/no/such/command"]'):
        (ctx / "Dockerfile").write_text(f"FROM base:1\n{run}\n")
        assert "exit code: 127" in lg.fails("build", str(ctx), code=127)


def test_symlinks_in_the_context_are_copied_not_followed(lg, base, ctx, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host secret\n")
    write(ctx, {"dir/file": "inside\n"})
    os.symlink(str(outside / "secret"), ctx / "link")
    os.symlink("../../outside/secret", ctx / "dir/relative")
    os.symlink(str(outside), ctx / "outdir")
    (ctx / "Dockerfile").write_text("FROM base:1\nCOPY . /ctx/\nCOPY link /single\n")
    build(lg, ctx, "-t", "app:1")
    root = checkout(lg, "app:1", tmp_path)
    assert os.readlink(root / "ctx/link") == str(outside / "secret")
    assert os.readlink(root / "ctx/dir/relative") == "../../outside/secret"
    assert os.readlink(root / "ctx/outdir") == str(outside)
    assert os.readlink(root / "single") == str(outside / "secret")
    assert (root / "ctx/dir/file").read_text() == "inside\n"
    assert not any(b"host secret" in p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink())

    # A source path through a symlinked directory is refused, not followed.
    before = image_id(lg, "app:1")
    (ctx / "Dockerfile").write_text("FROM base:1\nCOPY outdir/secret /stolen\n")
    assert "outdir/secret" in lg.fails("build", str(ctx), "-t", "app:1")
    assert image_id(lg, "app:1") == before


def _hostile(lg, ctx, entries, name="evil.tar.gz"):
    (ctx / name).write_bytes(A.compress(A.layer_tar(entries), "gzip"))
    (ctx / "Dockerfile").write_text(f"FROM base:1\nADD {name} /srv/unpacked/\n")
    return lg("build", str(ctx), "-t", "hostile:1", check=False)


def test_add_of_a_hostile_tarball_is_contained(lg, base, ctx, tmp_path):
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    (sentinel / "keep").write_text("host file\n")
    before = describe(str(sentinel))
    escape = f"/lg-build-escape-{uuid.uuid4().hex[:12]}"

    # ".." climbs are refused with one line; nothing is tagged.
    proc = _hostile(lg, ctx, [A.file("../../../../" + escape.lstrip("/"), b"pwned\n")])
    assert proc.returncode != 0 and len(proc.stderr.decode().strip().splitlines()) == 1 and ".." in proc.stderr.decode()
    lg.fails("show", "hostile:1")

    # An absolute symlink then a write through it lands inside the image, never on the host.
    proc = _hostile(lg, ctx, [
        A.symlink("escape", str(sentinel)),
        A.file("escape/pwned", b"pwned\n"),
        A.symlink("root", "/"),
        A.file(f"root{escape}", b"pwned\n"),
        A.hardlink("passwd-link", "/etc/passwd"),
    ])
    assert describe(str(sentinel)) == before and not os.path.lexists(escape)
    if proc.returncode == 0:
        root = checkout(lg, "hostile:1", tmp_path)
        assert (root / str(sentinel).lstrip("/") / "pwned").read_text() == "pwned\n"
        assert (root / escape.lstrip("/")).read_text() == "pwned\n"
        assert (root / "srv/unpacked/passwd-link").read_bytes() == (root / "etc/passwd").read_bytes()
    else:
        assert len(proc.stderr.decode().strip().splitlines()) == 1
    lg("fsck")


def test_dockerignore_excludes_and_reincludes_like_docker(lg, base, ctx, tmp_path):
    write(ctx, {
        "a.log": "", "keep.log": "", "sub/b.log": "", "secret/key": "", "build/out.o": "", "build/keep/x": "",
        "x.tmp": "", "deep/y/z.tmp": "", "readme.md": "",
        ".dockerignore": "# comment\n*.log\n!keep.log\n/secret/\nbuild\n!build/keep\n**/*.tmp\n",
    })
    (ctx / "Dockerfile").write_text("FROM base:1\nCOPY . /ctx/\n")
    build(lg, ctx, "-t", "app:1")
    root = checkout(lg, "app:1", tmp_path) / "ctx"
    present = sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())
    assert present == [".dockerignore", "Dockerfile", "build/keep/x", "keep.log", "readme.md", "sub/b.log"]

    # An excluded file cannot be named either.
    (ctx / "Dockerfile").write_text("FROM base:1\nCOPY secret/key /key\n")
    assert "secret/key" in lg.fails("build", str(ctx))

    # .containerignore wins over .dockerignore, as in podman.
    (ctx / ".containerignore").write_text("readme.md\n")
    (ctx / "Dockerfile").write_text("FROM base:1\nCOPY . /ctx/\n")
    build(lg, ctx, "-t", "app:2")
    root = checkout(lg, "app:2", tmp_path) / "ctx"
    assert not (root / "readme.md").exists() and (root / "a.log").exists()


def test_target_builds_only_the_stages_it_needs(lg, base, ctx):
    (ctx / "Dockerfile").write_text(
        "FROM base:1 AS first\nLABEL stage=first\n"
        "FROM base:1 AS broken\nCOPY no-such-file /\n"
        "FROM first\nCOPY no-such-file-either /\n"
    )
    out = build(lg, ctx, "--target", "first", "-t", "app:1")
    assert "broken" not in out and config(lg, "app:1")["Labels"] == {"stage": "first"}
    assert "no-such-file-either" in lg.fails("build", str(ctx), "-t", "app:2")
    lg.fails("show", "app:2")
    assert "could not be found" in lg.fails("build", "--target", "nope", str(ctx))


def test_build_args(lg, base, ctx):
    lg("tag", "base:1", "base:2")
    (ctx / "Dockerfile").write_text(
        "ARG TAG=1\nFROM base:${TAG}\nARG WHO=world\nENV GREETING=\"hello $WHO\"\nLABEL who=$WHO base=base:${TAG}\n"
    )
    out = build(lg, ctx, "--build-arg", "WHO=lg", "--build-arg", "TAG=2", "-t", "app:1")
    assert "FROM base:2" in out
    cfg = config(lg, "app:1")
    assert cfg["Env"] == ["GREETING=hello lg"] and cfg["Labels"] == {"who": "lg", "base": "base:"}
    assert messages(lg, "app:1", 3) == ["ARG WHO=world", 'ENV GREETING="hello lg"', "LABEL who=lg base=base:"]
    # Another value is another build; the same value again is a cache hit.
    other = lg.out("build", "-q", "--build-arg", "WHO=you", str(ctx)).strip()
    assert other != image_id(lg, "app:1")
    assert lg.out("build", "-q", "--build-arg", "WHO=lg", "--build-arg", "TAG=2", str(ctx)).strip() == image_id(lg, "app:1")


def test_escape_directive_continuations_and_add_url(lg, base, ctx, http_dir):
    served, url = http_dir
    (served / "page.html").write_text("<p>hi</p>\n")
    (ctx / "Dockerfile").write_text(
        "# escape=`\n"
        "FROM base:1\n"
        "LABEL a=1 `\n"
        "# a comment inside a continuation\n"
        "      b=2\n"
        "ENV WINPATH=C:\\tools\n"
        f"ADD --chmod=644 {url}/page.html /www/\n"
    )
    lg("build", "-q", "-t", "app:1", str(ctx), env=no_proxy(lg))
    cfg = config(lg, "app:1")
    assert cfg["Labels"] == {"a": "1", "b": "2"} and cfg["Env"] == ["WINPATH=C:\\tools"]
    assert messages(lg, "app:1", 1) == [f"ADD --chmod=644 {url}/page.html /www/"]
    (served / "page.html").write_text("<p>changed</p>\n")
    out = lg.out("build", "--progress", "plain", "-t", "app:2", str(ctx), env=no_proxy(lg))
    assert step_lines(out, "DONE")[1:] == [f"ADD --chmod=644 {url}/page.html /www/"]


def test_copy_words_are_split_at_blanks_then_each_expanded(lg, base, ctx, tmp_path):
    """As in BuildKit: a variable is one path, spaces and all; quotes cannot join words."""
    write(ctx, {"a b": "spaced\n", "a": "a\n"})
    (ctx / "Dockerfile").write_text('FROM base:1\nARG F="a b"\nCOPY $F /copied\n')
    build(lg, ctx, "-t", "app:1")
    assert (checkout(lg, "app:1", tmp_path) / "copied").read_text() == "spaced\n"
    (ctx / "Dockerfile").write_text('FROM base:1\nCOPY "a b" /copied\n')
    assert "matching double-quote" in lg.fails("build", str(ctx))


def test_bad_dockerfiles_fail_with_one_line(lg, base, ctx):
    for text, expected in (
        ("RUN echo no from\n", "first instruction must be FROM"),
        ("FROM base:1\nFROBNICATE x\n", "unknown instruction: FROBNICATE"),
        ("FROM base:1\nRUN <<EOF\nnever ends\n", "not terminated"),
        ("FROM no-such-image:1\n", "no such image"),
        ("FROM base:1\nCOPY --frobnicate a /\n", "--frobnicate is not supported"),
    ):
        (ctx / "Dockerfile").write_text(text)
        assert expected in lg.fails("build", str(ctx))
