"""errors.disk_full_names: a full disk or quota is DiskFull naming what was being written;
every other OSError passes through untouched."""

from __future__ import annotations

import errno

import pytest

from layergit.errors import DiskFull, disk_full_names


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space left on device"), (errno.EDQUOT, "disk quota exceeded")])
def test_full_and_over_quota_name_the_path(code, words):
    with pytest.raises(DiskFull) as info, disk_full_names("/r/store.git"):
        raise OSError(code, "x")
    assert str(info.value) == f"{words} while writing /r/store.git; free some space and try again"


def test_other_errors_pass_through():
    with pytest.raises(PermissionError), disk_full_names("/r"):
        raise PermissionError(errno.EACCES, "denied")
