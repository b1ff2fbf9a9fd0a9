"""lg run: output, exit codes, image defaults and flag overrides, tty and stdin, revisions, bad input.

Every test runs lg as a user would, in its own root (runtime_helpers.rt), and
looks at the result from inside the container.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from .runtime_helpers import IMAGE, RuntimeLg, assert_nothing_left, rt, runtime_template, snapshot  # noqa: F401

pytestmark = pytest.mark.root


# -- output and exit codes ---------------------------------------------------------------


def test_run_rm_echo(rt):
    """A foreground run prints the command's output, exits 0, and --rm leaves no container."""
    before = snapshot(rt)
    proc = rt("run", "--rm", IMAGE, "echo", "hi", timeout=60)
    assert proc.returncode == 0
    assert proc.stdout == b"hi\n"
    assert proc.stderr == b""
    assert_nothing_left(rt, before)


def test_stdout_and_stderr_kept_apart(rt):
    """The container's stdout and stderr reach lg's stdout and stderr respectively."""
    proc = rt("run", "--rm", IMAGE, "sh", "-c", "echo out; echo err >&2", timeout=60)
    assert proc.stdout == b"out\n" and proc.stderr == b"err\n"


def test_exit_code_is_the_containers(rt):
    """lg run exits with the container's own exit code."""
    proc = rt("run", "--rm", IMAGE, "sh", "-c", "exit 3", check=False, timeout=60)
    assert proc.returncode == 3
    assert proc.stderr == b""


def test_exit_code_of_a_signal(rt):
    """A container whose PID 1 is killed by a signal (here SIGKILL from the host) exits 128+N."""
    proc = subprocess.Popen([sys.executable, "-m", "cli", "run", "--network", "none", "--name", "victim", IMAGE, "sleep", "600"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=rt.env())
    try:
        pid = rt.wait_running("victim")["Pid"]
        os.kill(pid, signal.SIGKILL)
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 137
    assert rt.state("victim")["ExitCode"] == 137


def test_command_not_found_is_127(rt):
    """A command missing from the image: exit 127, one stderr line naming it, nothing left behind."""
    before = snapshot(rt)
    err = rt.fails("run", "--rm", IMAGE, "nosuchcommand", code=127, timeout=60)
    assert "nosuchcommand" in err
    assert_nothing_left(rt, before)


def test_absolute_command_not_found_is_127(rt):
    """A missing absolute path is 127 too, also without --rm (the container is kept, exited 127)."""
    err = rt.fails("run", "--name", "missing", IMAGE, "/no/such/file", code=127, timeout=60)
    assert "/no/such/file" in err


def test_command_not_executable_is_126(rt):
    """A file that is not executable: exit 126 and one stderr line."""
    before = snapshot(rt)
    err = rt.fails("run", "--rm", IMAGE, "/etc/passwd", code=126, timeout=60)
    assert "/etc/passwd" in err
    assert_nothing_left(rt, before)


def test_directory_as_command_is_126(rt):
    """A directory given as the command cannot be executed: 126."""
    rt.fails("run", "--rm", IMAGE, "/etc", code=126, timeout=60)


def test_unknown_user_is_125(rt):
    """lg's own failure to start the container (-u nosuchuser): 125, one line, nothing left."""
    before = snapshot(rt)
    err = rt.fails("run", "--rm", "-u", "nosuchuser", IMAGE, "true", code=125, timeout=60)
    assert "nosuchuser" in err
    assert_nothing_left(rt, before)


# -- image defaults and overrides -----------------------------------------------------------


@pytest.fixture
def configured(rt):
    """An image whose config sets Cmd, Env, WorkingDir and User (made with lg commit -c from a container)."""
    rt("create", "--name", "base", IMAGE, "true", timeout=60)
    rt(
        "commit", "base", "-t", "cfg:1",
        "-c", 'CMD ["sh", "-c", "echo cmd FOO=$FOO BAR=$BAR pwd=$(pwd) id=$(id -u):$(id -g)"]',
        "-c", "ENV FOO=from-image BAR=image-bar",
        "-c", "WORKDIR /var/www",
        "-c", "USER app",
        timeout=60,
    )
    rt("rm", "base", timeout=60)
    return "cfg:1"


def test_defaults_from_image_config(rt, configured):
    """Cmd, Env, WorkingDir and User come from the image's config.json."""
    out = rt.out("run", "--rm", configured, timeout=60)
    assert out == "cmd FOO=from-image BAR=image-bar pwd=/var/www id=1000:1000\n"
    config = rt.inspect(configured)["Config"]
    assert config["User"] == "app" and config["WorkingDir"] == "/var/www"


def test_args_replace_cmd(rt, configured):
    """Arguments after the image replace Cmd; the image's Env, WorkingDir and User still apply."""
    out = rt.out("run", "--rm", configured, "sh", "-c", 'echo "$FOO $(pwd) $(id -un)"', timeout=60)
    assert out == "from-image /var/www app\n"


def test_env_overrides(rt, configured, tmp_path):
    """-e and --env-file override the image's Env; -e wins over --env-file; -e KEY takes our value."""
    env_file = tmp_path / "env"
    env_file.write_text("# a comment\nBAR=from-file\nFILEONLY=yes\n")
    env = rt.env(PASSED="through")
    out = rt.out(
        "run", "--rm", "-e", "FOO=from-flag", "--env-file", str(env_file), "-e", "PASSED", configured,
        "sh", "-c", 'echo "$FOO|$BAR|$FILEONLY|$PASSED"', env=env, timeout=60,
    )
    assert out == "from-flag|from-file|yes|through\n"
    out = rt.out("run", "--rm", "--env-file", str(env_file), "-e", "BAR=flag", configured, "sh", "-c", "echo $BAR", timeout=60)
    assert out == "flag\n"


def test_default_environment(rt):
    """PATH, HOSTNAME and HOME are set as Docker sets them, and the host's environment does not leak in."""
    env = rt.env(LG_SECRET_HOST_VAR="leak")
    out = rt.out("run", "--rm", "--hostname", "envhost", IMAGE, "env", env=env, timeout=60)
    lines = dict(line.split("=", 1) for line in out.splitlines())
    assert lines["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert lines["HOSTNAME"] == "envhost"
    assert lines["HOME"] == "/root"
    assert "LG_SECRET_HOST_VAR" not in lines and "LG_ROOT" not in lines


def test_workdir_override(rt, configured):
    """-w overrides WorkingDir and is created when missing."""
    assert rt.out("run", "--rm", "-w", "/tmp", configured, "pwd", timeout=60) == "/tmp\n"
    assert rt.out("run", "--rm", "-w", "/new/dir", IMAGE, "sh", "-c", "pwd; ls -d /new/dir", timeout=60) == "/new/dir\n/new/dir\n"


def test_user_by_name_and_uid_gid(rt, configured):
    """-u accepts a name from the image's /etc/passwd, uid:gid numbers, and name:group; root overrides USER."""
    assert rt.out("run", "--rm", "-u", "nobody", IMAGE, "id", "-u", timeout=60) == "65534\n"
    assert rt.out("run", "--rm", "-u", "1234:4321", IMAGE, "sh", "-c", "echo $(id -u):$(id -g)", timeout=60) == "1234:4321\n"
    assert rt.out("run", "--rm", "-u", "app:nogroup", IMAGE, "sh", "-c", "echo $(id -u):$(id -g)", timeout=60) == "1000:65534\n"
    assert rt.out("run", "--rm", "-u", "root", configured, "id", "-u", timeout=60) == "0\n"
    assert rt.out("run", "--rm", "-u", "app", IMAGE, "sh", "-c", "echo $HOME", timeout=60) == "/home/app\n"


def test_unknown_group_is_125(rt):
    """A group name the image does not know: 125, one stderr line."""
    err = rt.fails("run", "--rm", "-u", "app:nosuchgroup", IMAGE, "true", code=125, timeout=60)
    assert "nosuchgroup" in err


def test_entrypoint_override(rt, configured):
    """--entrypoint replaces the Entrypoint and drops the image's Cmd; later args become its arguments."""
    assert rt.out("run", "--rm", "--entrypoint", "echo", configured, timeout=60) == "\n"
    assert rt.out("run", "--rm", "--entrypoint", "echo", configured, "a", "b", timeout=60) == "a b\n"


def test_entrypoint_from_image_gets_args(rt):
    """An image Entrypoint receives the run's arguments (Docker's Entrypoint + Cmd rule)."""
    rt("create", "--name", "base", IMAGE, "true", timeout=60)
    rt("commit", "base", "-t", "ep:1", "-c", 'ENTRYPOINT ["echo", "ep"]', "-c", 'CMD ["default"]', timeout=60)
    assert rt.out("run", "--rm", "ep:1", timeout=60) == "ep default\n"
    assert rt.out("run", "--rm", "ep:1", "given", timeout=60) == "ep given\n"


def test_hostname(rt):
    """--hostname sets the UTS name and /etc/hostname; the default is the short container id."""
    assert rt.out("run", "--rm", "--hostname", "web1", IMAGE, "sh", "-c", "hostname; cat /etc/hostname", timeout=60) == "web1\nweb1\n"
    cid = rt.out("create", IMAGE, "hostname", timeout=60).strip()
    assert rt.out("start", "-a", cid, timeout=60) == cid[:12] + "\n"


# -- volumes, tmpfs, read-only -------------------------------------------------------------


def test_volume_read_write(rt, tmp_path):
    """-v HOST:CTR shows the host directory inside; writes land on the host."""
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "in").write_text("from host\n")
    out = rt.out("run", "--rm", "-v", f"{vol}:/data", IMAGE, "sh", "-c", "cat /data/in; echo from container > /data/out", timeout=60)
    assert out == "from host\n"
    assert (vol / "out").read_text() == "from container\n"


def test_volume_read_only(rt, tmp_path):
    """-v HOST:CTR:ro can be read but not written, and the host directory stays unchanged."""
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "in").write_text("ro\n")
    proc = rt("run", "--rm", "-v", f"{vol}:/data:ro", IMAGE, "sh", "-c", "cat /data/in; echo x > /data/out && echo wrote; rm /data/in && echo removed; true", timeout=60)
    assert proc.stdout == b"ro\n"
    assert b"Read-only file system" in proc.stderr
    assert sorted(os.listdir(vol)) == ["in"]


def test_volume_file_and_new_target(rt, tmp_path):
    """A single file can be a volume, at a path the image does not have yet."""
    f = tmp_path / "conf"
    f.write_text("setting=1\n")
    assert rt.out("run", "--rm", "-v", f"{f}:/etc/app/app.conf:ro", IMAGE, "cat", "/etc/app/app.conf", timeout=60) == "setting=1\n"


def test_tmpfs(rt):
    """--tmpfs mounts an empty tmpfs at the path."""
    out = rt.out("run", "--rm", "--tmpfs", "/scratch", IMAGE, "sh", "-c", "echo x > /scratch/f && cat /scratch/f; grep ' /scratch ' /proc/self/mountinfo", timeout=60)
    lines = out.splitlines()
    assert lines[0] == "x"
    assert " - tmpfs " in lines[1]


def _volatile_root(rt, *run_args) -> bool:
    line = rt.out("run", *run_args, IMAGE, "grep", " / / ", "/proc/self/mountinfo", timeout=60)
    assert " - overlay " in line, line
    options = set(line.split()[-1].split(","))  # the superblock's, last on the line
    return bool(options & {"volatile", "fsync=volatile"})  # Linux 6.6 on shows the latter


def test_an_rm_containers_overlay_is_volatile_and_remounts(rt, tmp_path):
    """--rm mounts the overlay volatile, as podman does: its end does not wait for the
    host's dirty pages; a container that stays is mounted as usual. The kernel leaves
    a mark in a volatile work dir that fails the next mount; a second mount of an --rm
    container (lg cp before lg start) must not fail on it."""
    assert _volatile_root(rt, "--rm")
    assert not _volatile_root(rt, "--name", "kept")
    rt("rm", "kept")
    payload = tmp_path / "payload"
    payload.write_text("copied in\n")
    cid = rt.out("create", "--rm", IMAGE, "cat", "/payload").strip()
    rt("cp", str(payload), f"{cid}:/payload")  # mounts the stopped container's overlay once
    assert os.path.isdir(os.path.join(rt.root, "containers", cid, "work", "work", "incompat", "volatile"))
    assert rt.out("start", "-a", cid, timeout=60) == "copied in\n"


def test_read_only_rootfs(rt):
    """--read-only: writes to / fail; a --tmpfs /tmp stays writable."""
    proc = rt(
        "run", "--rm", "--read-only", "--tmpfs", "/tmp", IMAGE, "sh", "-c",
        "touch /newfile && echo root-writable; echo ok > /tmp/f && cat /tmp/f; rm /etc/passwd && echo rm-ok; true",
        timeout=60,
    )
    assert proc.stdout == b"ok\n"
    assert proc.stderr.count(b"Read-only file system") == 2


# -- stdin, tty, init -----------------------------------------------------------------------


def test_interactive_stdin(rt):
    """-i passes lg's stdin to the container."""
    assert rt.out("run", "-i", "--rm", IMAGE, "cat", input=b"data\nmore\n", timeout=60) == "data\nmore\n"


def test_stdin_not_passed_without_i(rt):
    """Without -i the container's stdin is empty (it does not steal lg's stdin)."""
    assert rt.out("run", "--rm", IMAGE, "sh", "-c", "cat; echo end", input=b"secret\n", timeout=60) == "end\n"


def _under_terminal(rt: RuntimeLg, lg_args: str, rows: int = 17, cols: int = 91) -> subprocess.CompletedProcess:
    """Run ``lg LG_ARGS`` with a terminal of the given size (util-linux script gives lg a pty)."""
    lg_cmd = f"{sys.executable} -m cli {lg_args}"
    return subprocess.run(
        ["script", "-qec", f"stty rows {rows} cols {cols}; {lg_cmd}", "/dev/null"],
        stdin=subprocess.DEVNULL, capture_output=True, env=rt.env(), timeout=60,
    )


def test_tty_is_a_real_terminal_with_our_size(rt):
    """-t gives the container a real pty (its own devpts) with lg's window size."""
    proc = _under_terminal(rt, f"run --network none -t --rm {IMAGE} sh -c 'tty; stty size'")
    out = proc.stdout.decode(errors="replace").replace("\r", "")
    assert proc.returncode == 0, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert re.fullmatch(r"/dev/(pts/\d+|console)", lines[0]), out
    assert lines[1] == "17 91", out


def test_tty_without_a_terminal(rt):
    """-t works when lg itself has no terminal (output through the pty, a tty inside)."""
    proc = rt("run", "-t", "--rm", IMAGE, "sh", "-c", "tty; test -t 0 && test -t 1 && echo both-tty", check=False, timeout=60)
    out = proc.stdout.decode(errors="replace").replace("\r", "")
    assert proc.returncode == 0, proc.stderr
    assert re.match(r"/dev/(pts/\d+|console)\nboth-tty\n", out), out


def test_tty_detached(rt):
    """lg run -d -t: the container's stdio is a pty (its output, \\r\\n and all, lands in the log)."""
    proc = rt("run", "-d", "-t", "--name", "dtty", IMAGE, "sh", "-c", "tty; test -t 0 && test -t 1 && echo both-tty", check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = rt.wait_log("dtty", "both-tty").replace("\r", "")
    assert re.match(r"/dev/(pts/\d+|console)\n", out), out


def test_exec_tty(rt):
    """lg exec -t gives the exec'd command a terminal that has a name inside the container and lg's window size."""
    rt.run_d("--name", "host", IMAGE, "sleep", "600")
    rt.wait_running("host")
    proc = _under_terminal(rt, "exec -t host sh -c 'tty; stty size'")
    out = proc.stdout.decode(errors="replace").replace("\r", "")
    assert proc.returncode == 0, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[-1] == "17 91", out
    assert re.fullmatch(r"/dev/(pts/\d+|console)", lines[0]), f"tty inside lg exec -t says {lines[0]!r}"


def test_init_is_pid_1(rt):
    """--init makes tini PID 1, with the command as its child (not PID 1)."""
    out = rt.out("run", "--rm", "--init", IMAGE, "sh", "-c", "tr '\\0' '\\n' < /proc/1/cmdline; echo ---; echo $$", timeout=60)
    argv, _, pid = out.partition("---\n")
    argv = argv.splitlines()
    assert argv[0] == "/dev/init" or "tini" in argv[0] or "init" in argv[0], argv
    assert "sh" in argv and "-c" in argv, argv
    assert pid.strip() != "1"


def test_a_plain_run_loads_nothing_it_does_not_use(rt):
    """A run's start-up is most of its time (issue 13): a rootful foreground run with no
    network and no --init loads neither the rootless network stack, the monitor's
    client (socket, subprocess) nor shutil (with bz2 and lzma, for finding tini)."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "cli", "run", "--rm", "--network", "none",
                           IMAGE, "true"], capture_output=True, text=True, cwd=repo, env=rt.env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "layergit.runtime.attach" in imported, "the run's own modules are listed"
    unused = {"layergit.runtime.rootless.netstack", "layergit.runtime.client", "socket", "subprocess", "shutil"}
    assert not imported & unused, sorted(imported & unused)


def test_command_is_pid_1_without_init(rt):
    """Without --init the command itself is PID 1 of its own PID namespace."""
    assert rt.out("run", "--rm", IMAGE, "sh", "-c", "echo $$", timeout=60) == "1\n"


def test_foreground_signal_stops_the_container(rt):
    """SIGINT/SIGTERM to a foreground lg run stops the container, not just lg."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "run", "--network", "none", "--name", "fg", IMAGE, "sh", "-c", "trap 'echo got-term; exit 9' TERM; while :; do sleep 0.1; done"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=rt.env(),
    )
    try:
        rt.wait_running("fg")
        time.sleep(0.3)  # let the shell install its trap
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 9
    assert b"got-term" in out
    assert rt.state("fg")["Status"] == "exited"


def test_foreground_ctrl_c_kills_non_trapping_pid1(rt):
    """Ctrl-C (SIGINT) stops a PID 1 that has no handler (it would ignore the signal otherwise)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "run", "--network", "none", "--name", "fg", IMAGE, "sleep", "600"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=rt.env(),
    )
    try:
        pid = rt.wait_running("fg")["Pid"]
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
        assert time.monotonic() - start < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert rt.state("fg")["Status"] == "exited"
    assert not os.path.exists(f"/proc/{pid}/cmdline") or b"sleep" not in open(f"/proc/{pid}/cmdline", "rb").read()


# -- revisions -----------------------------------------------------------------------------


def test_run_any_revision(rt):
    """An image name, NAME:TAG~1, a full id and a 12-digit short id all run the commit they name."""
    head = rt.inspect(IMAGE)["Id"]
    parent = rt.inspect(IMAGE + "~1")["Id"]
    assert head != parent
    assert rt.out("run", "--rm", IMAGE, "cat", "/etc/release", timeout=60) == "2\n"
    assert rt.out("run", "--rm", IMAGE + "~1", "cat", "/etc/release", timeout=60) == "1\n"
    assert rt.out("run", "--rm", parent, "cat", "/etc/release", timeout=60) == "1\n"
    assert rt.out("run", "--rm", parent[:12], "cat", "/etc/release", timeout=60) == "1\n"
    cid = rt.run_d("--name", "old", parent[:12], "true")
    rt.wait_exited(cid)
    assert rt.inspect("old")["Image"] == parent


# -- bad input -----------------------------------------------------------------------------

BAD_INPUT = [
    pytest.param(["run", "--rm", "nosuch:image", "true"], "nosuch", id="unknown-image"),
    pytest.param(["run", "--rm", IMAGE + "~9", "true"], "~9", id="unknown-revision"),
    pytest.param(["run", "--rm", "--memory", "lots", IMAGE, "true"], "lots", id="memory-lots"),
    pytest.param(["run", "--rm", "-v", "./relative:/path", IMAGE, "true"], "relative", id="volume-relative"),
    pytest.param(["run", "--rm", "-v", "/tmp:relative", IMAGE, "true"], "relative", id="volume-target-relative"),
    pytest.param(["run", "--rm", "-u", "nosuchuser", IMAGE, "true"], "nosuchuser", id="unknown-user"),
    pytest.param(["run", "--rm", "--cpus", "many", IMAGE, "true"], "many", id="cpus-bad"),
    pytest.param(["run", "--rm", "--network", "bridge0", IMAGE, "true"], "bridge0", id="network-unknown"),
    pytest.param(["run", "--rm", "--cap-add", "NOT_A_CAP", IMAGE, "true"], "NOT_A_CAP", id="cap-unknown"),
    pytest.param(["run", "--rm", "-w", "relative/dir", IMAGE, "true"], "relative", id="workdir-relative"),
    pytest.param(["run", "-d", "-u", "nosuchuser", IMAGE, "true"], "nosuchuser", id="detached-unknown-user"),
    pytest.param(["run", "-d", IMAGE, "nosuchcommand"], "nosuchcommand", id="detached-not-found"),
]


@pytest.mark.parametrize("args,mention", BAD_INPUT)
def test_bad_input_fails_cleanly(rt, args, mention):
    """Bad input: a non-zero exit, one clear stderr line naming the problem, nothing left behind."""
    before = snapshot(rt)
    err = rt.fails(*args, timeout=60)
    assert mention in err
    assert_nothing_left(rt, before)


def test_bad_input_exit_codes_are_dockers(rt):
    """lg run's own failures exit 125, a command not found 127, as docker run does (one check for all cases)."""
    wrong = []
    for param in BAD_INPUT:
        args, mention = param.values
        expected = 127 if mention == "nosuchcommand" else 125
        proc = rt(*args, check=False, timeout=60)
        if proc.returncode != expected:
            wrong.append(f"lg {' '.join(args)}: exit {proc.returncode}, expected {expected} ({proc.stderr.decode().strip()})")
    rt.run_d("--name", "taken", IMAGE, "sleep", "600")
    for args in (["run", "--rm", "--name", "taken", IMAGE, "true"], ["create", "--name", "taken", IMAGE, "true"]):
        proc = rt(*args, check=False, timeout=60)
        if proc.returncode != 125:
            wrong.append(f"lg {' '.join(args)}: exit {proc.returncode}, expected 125 ({proc.stderr.decode().strip()})")
    assert not wrong, "\n".join(wrong)


def test_name_in_use(rt):
    """A name already in use: one line naming it, the running container untouched, nothing new left behind."""
    cid = rt.run_d("--name", "taken", IMAGE, "sleep", "600")
    before = snapshot(rt)
    for args in (["run", "--rm", "--name", "taken", IMAGE, "true"], ["run", "-d", "--name", "taken", IMAGE, "true"], ["create", "--name", "taken", IMAGE, "true"]):
        err = rt.fails(*args, timeout=60)
        assert "taken" in err
    assert_nothing_left(rt, before)
    st = rt.state("taken")
    assert st["Running"] and rt.inspect("taken")["Id"] == cid


def test_invalid_name_refused(rt):
    """A name Docker would refuse is refused before anything is created."""
    before = snapshot(rt)
    err = rt.fails("run", "--rm", "--name", "bad/name", IMAGE, "true", timeout=60)
    assert "bad/name" in err
    assert_nothing_left(rt, before)
