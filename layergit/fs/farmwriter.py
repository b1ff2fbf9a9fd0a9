"""The farm's writer process: small files an import or a commit deposits
(fs.farm.FarmDeposit), written by a second process while lg parses and hashes.

Why a process and not a thread: writing a small file is seven system calls (open,
write, owner, mode, times, link, close), and a Python thread must win the GIL back
after each one. Beside a thread busy parsing a tar, that took up to the interpreter's
switch interval (5 ms) a call: 2,000 minbase files took 0.2 s alone and 27 s beside a
thread spinning in Python. A thread writing the farm during ``lg pull`` held the
parser up for a second; a process has a GIL of its own.

The parent sends each file as one record down a pipe: its size and metadata line
(store.meta's format), its bytes, then its blob id. The child writes and links it as
the parent would (FarmDeposit's own code) and says nothing while all goes well. A
failure (a full disk) ends it with one report on its stdout, which the parent raises
as the OSError it was; when the parent goes away mid-record, the child finds the pipe
closed and ends without linking that file. It runs in a process group of its own, so
a terminal's Ctrl-C reaches only the parent, which decides: it ends the child by
closing the pipe (close) or by killing it (abandon).
"""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import subprocess
import tempfile
from collections.abc import Callable
from typing import NoReturn, Protocol

from ..errors import LgError
from ..pyexec import module_argv, module_env
from ..store import meta as M
from ..text import printable

_HEAD = struct.Struct("<QI")  # content bytes, metadata line bytes
_OID = 20
PIPE_BYTES = 1 << 20  # fewer wake-ups than the default 64 KiB for 200 MB of files
_REPORT_MAX = 4096


class FarmProcess:
    """The parent's end: :meth:`put` files, then :meth:`close` (success) or
    :meth:`abandon` (the caller failed) exactly once."""

    def __init__(self, objects_dir: str):
        self._dir = objects_dir
        self._errors = tempfile.TemporaryFile()  # what the interpreter says if it cannot even start
        try:
            self._proc = subprocess.Popen(
                module_argv("layergit.fs.farmchild", objects_dir), env=module_env(),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errors, close_fds=True,
                process_group=0,  # a terminal's Ctrl-C reaches lg alone, which ends this one as it decides
            )
        except BaseException:
            self._errors.close()
            raise
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdin, self._stdout = self._proc.stdin, self._proc.stdout
        self._fd = self._stdin.fileno()
        try:
            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass  # above /proc/sys/fs/pipe-max-size (an unprivileged user's limit): the default works

    def put(self, meta: M.EntryMeta, data: bytes, oid: bytes) -> None:
        """Send one regular file; raises the child's failure if it has stopped."""
        line = M.format_line(b"", meta)
        parts = [memoryview(b) for b in (_HEAD.pack(len(data), len(line)), line, data, oid)]
        try:
            while parts:
                done = os.writev(self._fd, parts)
                while parts and done >= len(parts[0]):
                    done -= len(parts.pop(0))
                if parts:
                    parts[0] = parts[0][done:]
        except BrokenPipeError:
            self._stdin.close()
            self._failed()

    def close(self) -> None:
        """Wait until every file sent is in the farm; raise the child's failure."""
        try:
            self._stdin.close()
        except BrokenPipeError:
            pass
        if self._proc.wait() != 0:
            self._failed()
        self._stdout.close()
        self._errors.close()

    def abandon(self) -> None:
        """End the child at once; what it had not linked yet is not in the farm."""
        self._proc.kill()
        self._proc.wait()
        for pipe in (self._stdin, self._stdout, self._errors):
            try:
                pipe.close()
            except OSError:
                pass  # a write end whose reader is gone

    def _failed(self) -> NoReturn:
        """Raise what stopped the child: its report (an OSError, named after the farm,
        as the disk-full and permission messages need), else its own last word."""
        report = self._stdout.read(_REPORT_MAX)
        code = self._proc.wait()
        self._stdout.close()
        errno_text, _, strerror = report.decode(errors="replace").partition("\0")
        if errno_text.isdigit():
            self._errors.close()
            raise OSError(int(errno_text), strerror, self._dir)
        if not strerror:  # no report: the interpreter's own words, a traceback's last line
            self._errors.seek(max(0, os.fstat(self._errors.fileno()).st_size - _REPORT_MAX))
            lines = self._errors.read().decode(errors="replace").strip().splitlines()
            strerror = lines[-1] if lines else ""
        self._errors.close()
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        detail = f": {printable(strerror)}" if strerror else ""
        raise LgError(f"the farm's writer process failed ({how}){detail}")


def _exact(inp, n: int) -> bytes | None:
    data = inp.read(n)
    return data if len(data) == n else None


class Farm(Protocol):
    """What the child writes into (fs.farm.FarmDeposit, writing inline)."""

    def put(self, meta: M.EntryMeta, data: bytes, oid: bytes) -> None: ...

    def close(self) -> None: ...


def serve(open_farm: Callable[[], Farm], inp, report) -> int:
    """The child's loop (fs.farmchild runs it): records from ``inp`` into the farm;
    0 at the end of input (a record cut short is dropped: its sender went away), 1
    after a failure, which is written to ``report`` for the parent."""
    farm: Farm | None = None
    try:
        farm = open_farm()
        while head := inp.read(_HEAD.size):
            if len(head) != _HEAD.size:
                return 0
            size, line_bytes = _HEAD.unpack(head)
            line, data = _exact(inp, line_bytes), _exact(inp, size)
            oid = _exact(inp, _OID)
            if line is None or data is None or oid is None:
                return 0
            _, meta = M.parse_line(line[:-1])
            farm.put(meta, data, oid)
    except OSError as exc:
        report.write(b"%d\0%s" % (exc.errno or 0, str(exc.strerror or exc).encode(errors="replace")))
        return 1
    except Exception as exc:  # said in one line (a defect named by its type), never a traceback
        said = str(exc) if isinstance(exc, LgError) else f"{type(exc).__name__}: {exc}"
        report.write(b"\0" + said.encode(errors="replace")[:_REPORT_MAX - 1])
        return 1
    finally:
        if farm is not None:
            farm.close()
    return 0
