"""A RUN step: a throw-away container on the step's parent image, its output streamed
line by line to the build's progress, its writable layer turned into the new rootfs.

The container runs in the foreground exactly as ``lg run`` runs one
(containers.start with attach), but in a forked child whose stdout and stderr are
pipes to us: the runtime writes container output to its own fds 1 and 2, and the
build must label each line with its step instead of letting it reach the terminal
raw. The container is always removed, whatever happens: by us when we can, and
when the build is killed outright by the next sweep (container_lookup.sweep), since the
build owns it and it is ``--rm``. The forked runner dies with the build
(PDEATHSIG), and the container with the runner, so a killed build leaves nothing
running and no copy of its store lock behind.
"""

from __future__ import annotations

import os
import secrets
import selectors
import shutil
import signal
import sys
import tempfile
from typing import Callable

from ..errors import ExitCode, LgError
from ..porcelain import container_lookup, containers
from ..porcelain.container_layer import container_rootfs
from ..porcelain.repo import Repo
from ..porcelain.runopts import RunOptions
from ..runtime import syscalls as sc
from ..runtime.supervise import exit_code

_LONGEST_LINE = 65536
Output = Callable[[str, bytes], None]  # (stream, one line without its newline)


def run(
    repo: Repo, image: bytes, options: RunOptions, scripts: dict[str, bytes], on_output: Output | None, writer
) -> tuple[int, bytes | None]:
    """(exit code, new rootfs tree or None if the command failed).

    ``scripts`` are here-documents to mount read-only at ``/dev/pipes/NAME`` (for a
    ``RUN <<EOF`` whose body starts with ``#!``, as BuildKit does).
    """
    options.name = options.name or f"lg-build-{secrets.token_hex(6)}"
    options.auto_remove = True
    tmp = None
    if scripts:
        os.makedirs(repo.root.tmp, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=repo.root.tmp, prefix="build-run-")
        for name, body in scripts.items():
            path = os.path.join(tmp, name)
            with open(path, "wb") as f:
                f.write(body)
            options.volumes.append(f"{path}:/dev/pipes/{name}:ro")
    try:
        cid = containers.create(repo, image.hex(), options, owned=True)
        try:
            code = _attached(repo, cid, on_output or (lambda stream, line: None))
            if code != 0:
                return code, None
            _, rootfs, _ = container_rootfs(repo, container_lookup.find(repo, cid), writer, drop_stubs=True)
            return 0, rootfs
        finally:
            containers.remove(repo, [cid], force=True)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def _attached(repo: Repo, cid: str, on_output: Output) -> int:
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        _child(repo, cid, out_w, err_w, parent)
    os.close(out_w)
    os.close(err_w)
    try:
        _relay({out_r: "stdout", err_r: "stderr"}, on_output)
    except BaseException:
        os.kill(pid, signal.SIGKILL)  # not reaped yet, so still ours; its container dies with it
        raise
    finally:
        _, status = os.waitpid(pid, 0)
    return exit_code(status)


def _child(repo: Repo, cid: str, out_w: int, err_w: int, parent: int) -> None:
    """In the forked child: run the container attached to our pipes, exit with its code.

    First, die with the build: otherwise a killed build would leave us running the
    step to its end, holding the build's store lock (our copy of its fd) meanwhile.
    """
    code: int = ExitCode.RUN_FAILED
    try:
        sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the build died before that took effect
            os._exit(code)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        # Fresh file objects: the parent's could hold a lock another thread took at fork time.
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        code = containers.start_attached(repo, container_lookup.find(repo, cid))
    except BaseException as exc:  # the build shows it as the step's output, with lg's exit code for it
        code = exc.exit_code if isinstance(exc, LgError) else ExitCode.RUN_FAILED
        try:
            os.write(2, f"lg: {exc}\n".encode(errors="replace"))
        except OSError:
            pass
    finally:
        os._exit(code if isinstance(code, int) and 0 <= code < 256 else ExitCode.RUN_FAILED)


def _relay(streams: dict[int, str], on_output: Output) -> None:
    """Read both pipes to their end, handing on complete lines as they come."""
    sel = selectors.DefaultSelector()
    partial = {fd: b"" for fd in streams}
    for fd, stream in streams.items():
        sel.register(fd, selectors.EVENT_READ, stream)
    try:
        while sel.get_map():
            for key, _ in sel.select():
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fd)
                    if partial[key.fd]:
                        on_output(key.data, partial[key.fd])
                    continue
                lines = (partial[key.fd] + data).split(b"\n")
                partial[key.fd] = lines.pop()
                if len(partial[key.fd]) > _LONGEST_LINE:  # output without newlines still streams
                    lines.append(partial[key.fd])
                    partial[key.fd] = b""
                for line in lines:
                    on_output(key.data, line)
    finally:
        sel.close()
        for fd in streams:
            os.close(fd)
