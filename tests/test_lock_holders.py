"""Naming who holds a lock (layergit/flock.py) prints another user's command line: escaped.

Any process may hold a lock lg waits for, and its command line is whatever its user
chose. One whose argv[0] carries a terminal title sequence, a clear-screen and a C1
CSI holds a lock; lg's one-line message about it shows them as escapes.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from layergit import flock

NASTY = "\x1b]0;owned\x07\x1b[2J\x9b31m"
CONTROLS = {chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
HOLD = "import fcntl, sys, time; f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"


def test_lock_holder_command_line_is_escaped(tmp_path):
    lock = str(tmp_path / "lock")
    holder = subprocess.Popen([NASTY, "-c", HOLD, lock], executable=sys.executable, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(flock.LockTimeout) as caught:
            with flock.locked(lock, timeout=0.05, purpose="the test"):
                pass
        message = str(caught.value)
        assert not CONTROLS & set(message), repr(message)
        assert "\\e]0;owned\\x07\\e[2J\\u009b31m -c import fcntl" in message
        assert f"(pid {holder.pid})" in message
    finally:
        holder.kill()
        holder.wait()
