"""lg without root (issue 21): `lg run --rm IMG true` as an ordinary user, beside root's
lg and rootless podman as the same user; and HTTP through a rootless published port.

The user is made for the scenario the way the tests make theirs (tests/rootless_user.py:
useradd, a subordinate range, removed at the end with every process it left), and runs
the system's python3 on this checkout, as its tests do: the harness's interpreter may
sit where other users cannot reach. Root's row runs the same interpreter, so the ratio
is the namespace's cost, not an interpreter's. Everything of the user's (its lg root,
podman's storage) lives in its home under /var/tmp, outside the scratch filesystem,
which only root can enter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from .containers import LG_BB, REQUESTS, busybox_rootfs, free_ports, lg_root, reachable, try_setup
from .scenarios import Context, Scenario, SetupFailed
from .timing import Case, Goal

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LG_ROOTLESS = "lg run --rm --network none IMG true, rootless (as a user with a subordinate range)"
LG_ROOT_MODE = "lg run --rm --network none IMG true, as root (same interpreter)"


def _user(ctx: Context):
    sys.path.insert(0, REPO)
    from tests.rootless_user import PYTHON, _make_user, _remove_user

    user = _make_user(with_range=True)
    ctx.cleanups.append(lambda: _remove_user(user.name, user.home, user.uid))
    # The packages of lg's own interpreter (the venv's), whichever python runs the harness.
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.run([ctx.tools.python, "-c", where], capture_output=True, text=True,
                          check=True).stdout.strip()
    env = user.env(PYTHONPATH=f"{REPO}:{site}")
    # in its home: the scratch directory, every command's cwd, is not the user's to enter
    as_user = [*user.prefix(), "env", "-C", user.home, *(f"{k}={v}" for k, v in env.items())]
    return user, PYTHON, as_user, env


def build_rootless_run(ctx: Context) -> list[Case]:
    if os.geteuid() != 0 or not shutil.which("useradd"):
        reason = "needs root to make a user (useradd)"
        return [Case("lg", LG_ROOTLESS, unavailable=reason)]
    user, python, as_user, env = _user(ctx)
    user_root = os.path.join(user.home, "lg-root")
    src = os.path.join(user.home, "busybox")
    subprocess.run(["cp", "-a", str(busybox_rootfs(ctx)), src], check=True)
    subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", src], check=True)
    lg_user = [*as_user, f"LG_ROOT={user_root}", python, "-m", "cli"]
    lg_err = try_setup(lambda: ctx.run([*lg_user, "commit", src, "-t", LG_BB], what="lg commit (rootless)"))
    root, root_env = lg_root(ctx)
    lg_as_root = [python, "-m", "cli"]
    root_env = dict(root_env, PYTHONPATH=env["PYTHONPATH"])
    bb = str(busybox_rootfs(ctx))
    root_err = try_setup(lambda: ctx.run([*lg_as_root, "commit", bb, "-t", LG_BB], root_env,
                                         "lg commit (root)"))
    podman = shutil.which("podman")
    pm_err = None
    if podman:
        tar = os.path.join(user.home, "busybox.tar")
        subprocess.run(["tar", "-C", str(busybox_rootfs(ctx)), "-cf", tar, "."], check=True)
        os.chown(tar, user.uid, user.gid)
        pm_err = try_setup(lambda: ctx.run([*as_user, podman, "import", tar, "lgbench-bb:1"],
                                           what="podman import (rootless)"))
    cases = [
        # relative to root mode: the goal is at most 1.3
        Case("lg", LG_ROOTLESS, [*lg_user, "run", "--rm", "--network", "none", LG_BB, "true"], broken=lg_err,
             vs=LG_ROOT_MODE),
        Case("lg", LG_ROOT_MODE, [*lg_as_root, "run", "--rm", "--network", "none", LG_BB, "true"],
             env=root_env, broken=root_err),
    ]
    if podman:
        cases.append(Case("podman", "podman run --rm --network none IMG true, rootless as the same user",
                          [*as_user, podman, "run", "--rm", "--network", "none", "lgbench-bb:1", "true"],
                          broken=pm_err, vs=LG_ROOTLESS,
                          goal=Goal("rootless lg <= 0.5x rootless podman (issue 21)", "ratio", 0.5)))
    else:
        cases.append(Case("podman", "podman run --rm (rootless)", unavailable="podman not found on PATH"))
    return cases


LG_PORT_ROOTLESS = f"{REQUESTS} sequential GETs (curl), through rootless lg's published port 127.0.0.1:PORT"


def _user_busybox(ctx: Context, user) -> str:
    src = os.path.join(user.home, "busybox")
    if not os.path.isdir(src):
        subprocess.run(["cp", "-a", str(busybox_rootfs(ctx)), src], check=True)
        subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", src], check=True)
    return src


def build_rootless_port(ctx: Context) -> list[Case]:
    """busybox httpd (the fixture's index.html) published by rootless lg on 127.0.0.1:PORT
    (the monitor's listener in the host's network namespace, relaying into the user's),
    beside the same GETs straight to the container's address from inside the user's
    network namespace (nsenter into the pause process's namespaces, as the user) and
    through rootless podman's published port (slirp4netns's port forwarder)."""
    curl = shutil.which("curl")
    if os.geteuid() != 0 or not shutil.which("useradd") or not curl:
        return [Case("lg", LG_PORT_ROOTLESS, unavailable="needs root to make a user (useradd), and curl")]
    user, python, as_user, _ = _user(ctx)
    lg_user = [*as_user, f"LG_ROOT={os.path.join(user.home, 'lg-root')}", python, "-m", "cli"]
    src = _user_busybox(ctx, user)
    lg_port, pm_port = free_ports(2)
    serve = ["httpd", "-f", "-p", "80", "-h", "/var/www"]
    lg_pub = f"http://127.0.0.1:{lg_port}/"

    def lg_setup() -> None:
        ctx.run([*lg_user, "commit", src, "-t", LG_BB], what="lg commit (rootless)")
        ctx.run([*lg_user, "run", "-d", "--name", "web", "-p", f"127.0.0.1:{lg_port}:80", LG_BB, *serve],
                what="lg run -d (rootless)")
        ctx.cleanups.append(lambda: subprocess.run([*lg_user, "rm", "-f", "web"], capture_output=True))
        why = reachable(lg_pub, curl)
        if why:
            raise SetupFailed(f"rootless lg's published port: {why}")

    lg_err = try_setup(lg_setup)
    direct: list[str] = []
    if lg_err is None:
        data = json.loads(ctx.run([*lg_user, "inspect", "web"], what="lg inspect (rootless)"))
        address = data[0]["NetworkSettings"]["IPAddress"]
        pause = open(f"/tmp/layergit-run-{user.uid}/pause.pid").read().split()[0]
        direct = [*as_user, "nsenter", "--preserve-credentials", "-U", "-n", "-t", pause]
        direct_url = f"http://{address}/"
    podman = shutil.which("podman")
    pm_err = None if podman else "podman not found on PATH"
    if podman:
        def pm_setup() -> None:
            tar = os.path.join(user.home, "busybox.tar")
            subprocess.run(["tar", "-C", str(busybox_rootfs(ctx)), "-cf", tar, "."], check=True)
            os.chown(tar, user.uid, user.gid)
            ctx.run([*as_user, podman, "import", tar, "lgbench-bb:1"], what="podman import (rootless)")
            ctx.run([*as_user, podman, "run", "-d", "--name", "web", "-p", f"127.0.0.1:{pm_port}:80",
                     "lgbench-bb:1", *serve], what="podman run -d (rootless)")
            ctx.cleanups.append(
                lambda: subprocess.run([*as_user, podman, "rm", "-f", "web"], capture_output=True))
            why = reachable(f"http://127.0.0.1:{pm_port}/", curl)
            if why:
                raise SetupFailed(f"rootless podman's published port: {why}")

        pm_err = try_setup(pm_setup)

    def client(url: str) -> list[str]:
        return [curl, "-sS", "-f", "--noproxy", "*", "-m", "10", f"{url}?[1-{REQUESTS}]"]

    what = f"{REQUESTS} sequential GETs (curl), "
    return [
        Case("lg", LG_PORT_ROOTLESS, client(lg_pub), broken=lg_err),
        Case("direct", what + "straight to the container, inside the user's network namespace",
             [*direct, *client(direct_url)] if direct else [], broken=lg_err, vs=LG_PORT_ROOTLESS),
        Case("podman", what + "through rootless podman's published port 127.0.0.1:PORT2 (slirp4netns)",
             client(f"http://127.0.0.1:{pm_port}/"), broken=pm_err, vs=LG_PORT_ROOTLESS),
    ]


ROOTLESS_SCENARIOS = [
    Scenario(33, "rootless-run", "lg run --rm IMG true without root",
             "`lg run --rm --network none IMG true` as an unprivileged user (setpriv, a subordinate id "
             "range, its own root) vs the same as root and vs rootless `podman run --rm` as that user.",
             LG_ROOTLESS, runs=10, quick_runs=3, build=build_rootless_run),
    Scenario(34, "rootless-port", "HTTP through a rootless published port",
             f"{REQUESTS} sequential GETs to a busybox httpd published by rootless lg on 127.0.0.1 vs"
             " straight to its address from the user's network namespace, and vs rootless podman's"
             " published port.",
             LG_PORT_ROOTLESS, runs=5, quick_runs=3, build=build_rootless_port),
]
