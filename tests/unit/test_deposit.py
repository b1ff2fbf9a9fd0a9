"""fs.farm.FarmDeposit.blob: a file's bytes go to the store and into the farm under
the key of the blob id the store gave those very bytes, whichever path they take:
written inline, streamed, or handed to the writer process (fs.farmwriter)."""

from __future__ import annotations

import io
import os
import signal
import stat
import sys

import pytest

from layergit.errors import LgError
from layergit.fs import farmwriter
from layergit.fs.farm import FarmDeposit, _key
from layergit.store.rawobj import CHUNK, STREAM_FROM

from .memstore import MemStore, meta


def _farm_file(farm: str, oid: bytes, m) -> bytes:
    key = _key(oid, m)
    with open(os.path.join(farm, key[:2], key[2:]), "rb") as f:
        return f.read()


def _pieces(data: bytes):
    return lambda: (data[i:i + CHUNK] for i in range(0, len(data), CHUNK))


def _deposit(farm: str, handed_over: bool) -> FarmDeposit:
    deposit = FarmDeposit(None, farm)
    if handed_over:
        deposit.HAND_OVER_AFTER = 0  # every small file goes to the writer process
    return deposit


def _farm_files(farm: str) -> list[str]:
    return sorted(f for _, _, files in os.walk(farm) for f in files)


@pytest.mark.parametrize("handed_over", [False, True])
@pytest.mark.parametrize("size", [0, 100, STREAM_FROM - 1, STREAM_FROM + 5])
def test_every_path_deposits_what_the_store_hashed(tmp_path, size, handed_over):
    store, farm = MemStore(), str(tmp_path / "objects")
    m = meta("f", mode=0o4751, uid=os.getuid(), gid=os.getgid(), mtime_ns=1_234_567_891_123_456_789)
    data = os.urandom(size)
    deposit = _deposit(farm, handed_over)
    oid = deposit.blob(store, m, size, lambda: data, _pieces(data))
    deposit.close()
    assert store.read_blob(oid) == data
    assert _farm_file(farm, oid, m) == data
    key = _key(oid, m)
    st = os.stat(os.path.join(farm, key[:2], key[2:]))
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns) == (0o4751, m.uid, m.gid, m.mtime_ns)


def test_the_first_files_are_written_inline_then_the_process_takes_over(tmp_path):
    """A commit of a few files starts no process; a big deposit hands over, and every
    file lands either way."""
    store, farm = MemStore(), str(tmp_path / "objects")
    deposit = FarmDeposit(None, farm)
    files = [(meta("f", uid=os.getuid(), gid=os.getgid(), mtime_ns=i), b"file %d" % i)
             for i in range(FarmDeposit.HAND_OVER_AFTER + 10)]
    oids = []
    for m, data in files[:FarmDeposit.HAND_OVER_AFTER]:
        oids.append(deposit.blob(store, m, len(data), lambda d=data: d, _pieces(data)))
    assert deposit._process is None
    for m, data in files[FarmDeposit.HAND_OVER_AFTER:]:
        oids.append(deposit.blob(store, m, len(data), lambda d=data: d, _pieces(data)))
    assert deposit._process is not None
    deposit.close()
    assert [_farm_file(farm, oid, m) for oid, (m, _) in zip(oids, files, strict=True)] == [d for _, d in files]


@pytest.mark.parametrize("handed_over", [False, True])
def test_a_small_file_that_grew_while_read_is_kept_as_read(tmp_path, handed_over):
    """``whole()`` gave more than the announced size (put_file refuses a grown file
    itself; another reader may not): stored and deposited as read, no crash."""
    store, farm = MemStore(), str(tmp_path / "objects")
    m = meta("f", uid=os.getuid(), gid=os.getgid())
    grown = os.urandom(STREAM_FROM + 100)
    deposit = _deposit(farm, handed_over)
    oid = deposit.blob(store, m, 100, lambda: grown, _pieces(grown))
    deposit.close()
    assert store.read_blob(oid) == grown and _farm_file(farm, oid, m) == grown


def test_a_stream_that_is_not_its_size_deposits_nothing(tmp_path):
    store, farm = MemStore(), str(tmp_path / "objects")
    m = meta("f", uid=os.getuid(), gid=os.getgid())
    short = os.urandom(STREAM_FROM)
    deposit = FarmDeposit(None, farm)
    with pytest.raises(ValueError):
        deposit.blob(store, m, STREAM_FROM + 1, lambda: short, _pieces(short))
    deposit.close()
    assert _farm_files(farm) == []


def _doomed_deposit(tmp_path) -> tuple[FarmDeposit, str]:
    """A deposit whose writer process will fail for real: its farm is a file by the
    time the process starts (it starts with the first file handed over)."""
    farm = str(tmp_path / "objects")
    deposit = _deposit(farm, handed_over=True)
    os.rename(farm, farm + ".gone")
    with open(farm, "w"):
        pass
    return deposit, farm


def test_the_writer_process_failure_is_raised_as_the_oserror_it_was(tmp_path):
    store, m = MemStore(), meta("f", uid=os.getuid(), gid=os.getgid())
    deposit, farm = _doomed_deposit(tmp_path)
    with pytest.raises(OSError) as failure:
        for i in range(2000):  # the pipe breaks once the child has stopped, or close says so
            data = b"file %d" % i
            deposit.blob(store, m, len(data), lambda d=data: d, _pieces(data))
        deposit.close()
    assert type(failure.value) is FileExistsError  # the errno crossed the pipe, not a generic error
    assert failure.value.filename == farm  # messages name the farm, not the file being read
    assert deposit._process._proc.returncode == 1


def test_an_abandoned_deposit_ends_its_process_and_keeps_the_callers_failure(tmp_path):
    """The caller's failure is the one reported: its writer is killed, not waited for,
    even one that is failing itself."""
    store, m = MemStore(), meta("f", uid=os.getuid(), gid=os.getgid())
    deposit, _ = _doomed_deposit(tmp_path)
    with pytest.raises(KeyError):
        try:
            deposit.blob(store, m, 6, lambda: b"doomed", _pieces(b"doomed"))
            raise KeyError("the caller's own failure")
        except BaseException:
            deposit.abandon()
            raise
    assert deposit._process._proc.returncode is not None  # reaped: no process left behind


def test_a_terminals_ctrl_c_reaches_lg_not_its_writer(tmp_path):
    """A terminal sends SIGINT to its foreground process group; the writer is in a group
    of its own, so lg alone decides what a Ctrl-C ends (abandon kills the writer)."""
    store, farm = MemStore(), str(tmp_path / "objects")
    m = meta("f", uid=os.getuid(), gid=os.getgid())
    deposit = _deposit(farm, handed_over=True)
    first = deposit.blob(store, m, 5, lambda: b"first", _pieces(b"first"))
    child = deposit._process._proc.pid
    assert os.getpgid(child) == child != os.getpgrp()
    deposit.close()
    assert deposit._process._proc.returncode == 0 and _farm_file(farm, first, m) == b"first"


def _record(m, data: bytes, oid: bytes) -> bytes:
    line = farmwriter.M.format_line(b"", m)
    return farmwriter._HEAD.pack(len(data), len(line)) + line + data + oid


@pytest.mark.parametrize("cut", [1, 12, 40, -1])
def test_a_record_cut_short_links_nothing(tmp_path, cut):
    """The parent went away mid-record (killed): the child ends quietly, and the file
    it was given part of is not in the farm; the whole records before it are."""
    store, farm = MemStore(), str(tmp_path / "objects")
    m = meta("f", uid=os.getuid(), gid=os.getgid())
    whole = _record(m, b"whole", store.put_blob(b"whole"))
    partial = _record(m, b"partial", store.put_blob(b"partial"))[:cut]
    report = io.BytesIO()
    assert farmwriter.serve(lambda: FarmDeposit(None, farm, hand_over=False), io.BytesIO(whole + partial), report) == 0
    assert report.getvalue() == b""
    assert len(_farm_files(farm)) == 1 and _farm_file(farm, store.put_blob(b"whole"), m) == b"whole"


def test_an_interpreter_that_cannot_be_started_again_means_writing_inline(tmp_path, monkeypatch):
    """A user who reached the interpreter through a mount namespace only (the tests'
    65534) cannot exec it again: the deposit writes its files itself."""
    monkeypatch.setattr(sys, "executable", str(tmp_path / "gone" / "python"))
    store, farm = MemStore(), str(tmp_path / "objects")
    m = meta("f", uid=os.getuid(), gid=os.getgid())
    deposit = _deposit(farm, handed_over=True)
    oids = [deposit.blob(store, m, 1, lambda i=i: b"%d" % i, _pieces(b"")) for i in range(3)]
    deposit.close()
    assert deposit._process is None
    assert [_farm_file(farm, oid, m) for oid in oids] == [b"0", b"1", b"2"]


def test_the_writer_imports_lg_not_the_working_directory(tmp_path, monkeypatch):
    """``python -m`` puts the working directory first on sys.path: root depositing from
    /tmp, where another user left a ``dataclasses.py``, would have run it as root. The
    writer is started with -P and lg's own package directory on PYTHONPATH."""
    evil, marker = tmp_path / "evil", tmp_path / "ran"
    evil.mkdir()
    for module in ("dataclasses.py", "struct.py"):
        (evil / module).write_text(f"open({str(marker)!r}, 'w').close()\nraise SystemExit(3)\n")
    (evil / "layergit").mkdir()
    (evil / "layergit" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.chdir(evil)
    store, farm = MemStore(), str(tmp_path / "objects")
    m = meta("f", uid=os.getuid(), gid=os.getgid())
    deposit = _deposit(farm, handed_over=True)
    oid = deposit.blob(store, m, 4, lambda: b"safe", _pieces(b"safe"))
    deposit.close()
    assert not marker.exists()
    assert _farm_file(farm, oid, m) == b"safe"


def test_a_writer_killed_outright_is_named_by_its_signal(tmp_path):
    """The OOM killer's SIGKILL leaves no report: the failure says what ended it."""
    store, farm = MemStore(), str(tmp_path / "objects")
    m = meta("f", uid=os.getuid(), gid=os.getgid())
    deposit = _deposit(farm, handed_over=True)
    deposit.blob(store, m, 5, lambda: b"first", _pieces(b"first"))
    deposit._process._proc.send_signal(signal.SIGKILL)
    deposit._process._proc.wait()
    with pytest.raises(LgError, match=r"farm's writer process failed \(killed by SIGKILL\)"):
        deposit.blob(store, m, 6, lambda: b"second", _pieces(b"second"))
        deposit.close()


@pytest.mark.parametrize("handed_over", [False, True])
@pytest.mark.parametrize("damage", ["file", "symlink"])
def test_a_fan_directory_that_is_not_one_is_said_not_skipped(tmp_path, handed_over, damage):
    """Something other than a directory where the farm's cache/objects/XX should be: the
    deposit says so (it had taken the error for "this object exists" and kept nothing),
    from the writer process too."""
    store, m = MemStore(), meta("f", uid=os.getuid(), gid=os.getgid())
    farm = str(tmp_path / "objects")
    deposit = _deposit(farm, handed_over)
    (tmp_path / "elsewhere").mkdir()
    for fan in (f"{i:02x}" for i in range(256)):
        if damage == "file":
            (tmp_path / "objects" / fan).write_bytes(b"")
        else:
            os.symlink(tmp_path / "elsewhere", tmp_path / "objects" / fan)
    with pytest.raises(LgError, match="is not a directory; the file cache is damaged"):
        try:
            data = b"one file"
            deposit.blob(store, m, len(data), lambda: data, _pieces(data))
        finally:
            deposit.close()
    assert os.listdir(tmp_path / "elsewhere") == []
