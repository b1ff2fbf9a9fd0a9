"""A container's log: Docker's json-file format, rotated as Docker's json-file driver
rotates it, and read back across the rotated files.

One JSON object per line: ``{"log": ..., "stream": "stdout"|"stderr", "time": RFC 3339}``.
``--log-opt max-size=SIZE`` bounds ``container.log``; a write that would take it
past the size first renames it to ``container.log.1`` (and ``.1`` to ``.2``, ...),
keeping ``max-file`` files in all (``max-file=1``: the file is emptied instead).
Unlike Docker, whose default is unbounded, a container without ``--log-opt``
gets DEFAULT_MAX_SIZE and DEFAULT_MAX_FILE: a service left running for months
must not fill the disk. ``max-size=-1`` asks for Docker's unbounded log.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator

from ..errors import UsageError
from .state import now_iso

LOG_NAME = "container.log"
CHUNK = 16384  # bytes of a line before it is written as a partial line
DEFAULT_MAX_SIZE = 10 << 20  # bytes per file: 10m
DEFAULT_MAX_FILE = 3  # files in all: at most 30 MiB of log per container
_SIZE = re.compile(r"([0-9]+)([kmg]?)", re.IGNORECASE)
_UNITS = {"": 1, "k": 1000, "m": 1000 ** 2, "g": 1000 ** 3}  # Docker's json-file takes decimal units


def parse_log_opts(options: list[str], driver: str | None = None) -> dict[str, int]:
    """``--log-opt KEY=VALUE`` (max-size, max-file) as ``{"max-size": BYTES, "max-file": N}``;
    ``max-size=-1`` is unbounded (-1). Anything else is one line of usage error, and so is
    a ``--log-driver`` other than json-file."""
    if driver not in (None, "json-file"):
        raise UsageError(f"--log-driver {driver[:40]!r}: lg writes json-file logs only")
    out: dict[str, int] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if key == "max-size" and sep:
            m = _SIZE.fullmatch(value)
            if value == "-1":
                out[key] = -1
            elif m and int(m[1]) > 0:
                out[key] = int(m[1]) * _UNITS[m[2].lower()]
            else:
                raise UsageError(f"invalid --log-opt {option[:80]!r}: max-size is a positive size"
                                 " such as 10m (k, m, g), or -1")
        elif key == "max-file" and sep:
            if not value.isdigit() or not 0 < int(value) <= 100:
                raise UsageError(f"invalid --log-opt {option[:80]!r}: max-file is a number from 1 to 100")
            out[key] = int(value)
        else:
            raise UsageError(f"unknown --log-opt {option[:80]!r}:"
                             " lg's json-file log takes max-size and max-file")
    if out.get("max-file", 1) > 1 and out.get("max-size") == -1:
        raise UsageError("--log-opt max-file needs a max-size")
    return out


def limits(opts: dict[str, int]) -> tuple[int, int]:
    """(max size in bytes or -1, number of files) a container's log is kept to."""
    return opts.get("max-size", DEFAULT_MAX_SIZE), opts.get("max-file", DEFAULT_MAX_FILE)


def rotated(path: str, index: int) -> str:
    """The name of the ``index``-th older file (0: the live one)."""
    return f"{path}.{index}" if index else path


def rotate(path: str, max_file: int) -> None:
    """Shift ``path`` to ``path.1``, ``.1`` to ``.2``, ...; the oldest beyond ``max_file`` goes."""
    try:
        os.unlink(rotated(path, max_file - 1))
    except FileNotFoundError:
        pass
    for index in range(max_file - 2, -1, -1):
        try:
            os.rename(rotated(path, index), rotated(path, index + 1))
        except FileNotFoundError:
            pass


def files(path: str) -> list[str]:
    """The log's files, oldest first (the rotated ones that exist, then the live one)."""
    directory, base = os.path.split(path)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    older = sorted((int(n[len(base) + 1:]) for n in names
                    if n.startswith(base + ".") and n[len(base) + 1:].isdigit()), reverse=True)
    return [rotated(path, i) for i in older if i] + ([path] if base in names else [])


class LogWriter:
    """Line-buffered json-file log of one container, rotated at ``max_size``."""

    def __init__(self, path: str, max_size: int = -1, max_file: int = 1):
        self.path, self.max_size, self.max_file = path, max_size, max_file
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size
        self._partial: dict[str, bytes] = {}

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def write(self, stream: str, data: bytes) -> None:
        buf = self._partial.get(stream, b"") + data
        lines = buf.split(b"\n")
        self._partial[stream] = lines.pop()
        if len(self._partial[stream]) >= CHUNK:
            lines.append(self._partial[stream])
            self._partial[stream] = b""
            self._emit(stream, lines[:-1], newline=True)
            self._emit(stream, lines[-1:], newline=False)
            return
        self._emit(stream, lines, newline=True)

    def _emit(self, stream: str, lines: list[bytes], newline: bool) -> None:
        """Write the lines as entries, in as few writes as the size limit allows: the
        limit is checked per entry, as Docker's json-file does (an entry larger than the
        limit gets a file of its own)."""
        if not lines:
            return
        stamp = now_iso()
        batch = bytearray()
        for line in lines:
            entry = json.dumps({"log": line.decode("utf-8", "replace") + ("\n" if newline else ""),
                                "stream": stream, "time": stamp}).encode() + b"\n"
            if 0 < self.max_size < self._size + len(batch) + len(entry) and self._size + len(batch):
                self._flush(batch)
                self._rotate()
            batch += entry
        self._flush(batch)

    def _flush(self, batch: bytearray) -> None:
        if batch:
            os.write(self._fd, batch)
            self._size += len(batch)
            batch.clear()

    def _rotate(self) -> None:
        if self.max_file > 1:
            os.close(self._fd)
            rotate(self.path, self.max_file)
            self._fd = self._open()
        else:
            os.ftruncate(self._fd, 0)
        self._size = 0

    def close(self) -> None:
        for stream, rest in self._partial.items():
            if rest:
                self._emit(stream, [rest], newline=False)
        self._partial.clear()
        os.close(self._fd)


def read_lines(path: str) -> Iterator[bytes]:
    """Every line of the log, across its rotated files, oldest first."""
    for name in files(path):
        try:
            with open(name, "rb") as f:
                yield from f
        except FileNotFoundError:  # rotated away while we read the ones before
            continue
