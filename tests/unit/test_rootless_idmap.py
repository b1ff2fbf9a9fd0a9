"""The id maps of lg without root, and its refusals where user namespaces are disabled."""

from __future__ import annotations

import pytest

from layergit.runtime.rootless import RootlessError
from layergit.runtime.rootless.idmap import IdMap, IdRange, subordinate, user_map
from layergit.runtime.rootless.userns import check_enabled

SUBUID = """\
# comment
alice:100000:65536
bob:x:65536
1002:300000:1000
bob:200000:0
bob:231072:65536
"""


def test_the_first_usable_range_of_a_user_by_name_or_id():
    assert subordinate(SUBUID, "alice", 1000) == IdRange(1, 100000, 65536)
    assert subordinate(SUBUID, "bob", 1001) == IdRange(1, 231072, 65536)  # malformed and empty skipped
    assert subordinate(SUBUID, "carol", 1002) == IdRange(1, 300000, 1000)
    assert subordinate(SUBUID, "dave", 1003) is None


def test_the_map_makes_the_user_root_and_keeps_the_range_exact():
    m = user_map(1000, IdRange(1, 100000, 65536))
    assert m.args() == ["0", "1000", "1", "1", "100000", "65536"]
    assert not m.single and m.size == 65537
    assert m.to_host(0) == 1000 and m.to_host(33) == 100032 and m.to_host(65536) == 165535
    assert m.to_host(65537) is None and not m.contains(65537) and m.contains(33)
    single = user_map(1000, None)
    assert single.single and single.args() == ["0", "1000", "1"] and single.to_host(33) is None
    assert IdMap(()).size == 0


@pytest.mark.parametrize("path, value, name", [
    ("kernel/unprivileged_userns_clone", "0", "kernel.unprivileged_userns_clone=0"),
    ("user/max_user_namespaces", "0", "user.max_user_namespaces=0"),
    ("kernel/apparmor_restrict_unprivileged_userns", "1", "kernel.apparmor_restrict_unprivileged_userns=1"),
])
def test_disabled_user_namespaces_are_refused_naming_the_sysctl(tmp_path, path, value, name):
    check_enabled(str(tmp_path))  # nothing there: nothing forbids them
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_text(value + "\n")
    with pytest.raises(RootlessError) as err:
        check_enabled(str(tmp_path))
    assert name in str(err.value) and "\n" not in str(err.value)
    (tmp_path / path).write_text("1\n" if value == "0" else "0\n")
    check_enabled(str(tmp_path))
