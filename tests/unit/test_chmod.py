"""COPY/ADD --chmod, octal and symbolic, as chmod(1) and BuildKit apply it."""

from __future__ import annotations

import pytest

from layergit.build.dockerfile import DockerfileError
from layergit.build.files import Chmod


@pytest.mark.parametrize("text, mode, is_dir, expected", [
    ("755", 0o600, False, 0o755),
    ("0644", 0o777, True, 0o644),
    ("u+x", 0o644, False, 0o744),
    ("go-w", 0o666, False, 0o644),
    ("a=r", 0o755, False, 0o444),
    ("a=rX", 0o644, True, 0o555),
    ("a=rX", 0o644, False, 0o444),
    ("a+X", 0o744, False, 0o755),
    ("+x", 0o600, False, 0o711),
    ("u=rwx,g=rx,o=", 0o777, False, 0o750),
    ("u+s,g+s,+t", 0o755, False, 0o7755),
    ("u=rw", 0o4755, False, 0o0655),
])
def test_chmod(text, mode, is_dir, expected):
    assert Chmod(text).apply(mode, is_dir) == expected


@pytest.mark.parametrize("text", ["", "8", "99999", "u+q", "z+x", "u+x,", "u+x g-w", "rwx"])
def test_bad_chmod_is_one_error(text):
    with pytest.raises(DockerfileError, match="--chmod"):
        Chmod(text)
