"""The busybox fixture commits and checks out exactly."""

from .treecompare import assert_same_tree
from .trees import root_mode


def test_commit_checkout_roundtrip(lg, busybox_copy, tmp_path):
    image_id = lg.out("commit", busybox_copy, "-t", "smoke:v1", "-m", "base").strip()
    assert len(image_id) == 40
    lg("checkout", "smoke:v1", tmp_path / "out", "--mode", root_mode(busybox_copy))
    assert_same_tree(busybox_copy, tmp_path / "out")
