"""The default seccomp filter's rules (runtime/security.py) against what docs/seccomp.md says of them.

The filter's argument rules are checked here by evaluating them in Python: libseccomp
compiles them, but only a container run (tests/test_exec_escape.py) shows the kernel
applying them.
"""

from __future__ import annotations

import os
import re

import pyseccomp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from layergit.runtime import security

from ..conftest import REPO


def _persona_refused(value: int) -> bool:
    return any(value & mask == expected for mask, expected in security.persona_denials())


@given(st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_personality_rules_refuse_exactly_what_docker_refuses(value):
    """The kernel reads personality's argument as an unsigned int: what counts is the low 32 bits."""
    assert _persona_refused(value) == ((value & 0xFFFFFFFF) not in security.ALLOWED_PERSONAS)


@pytest.mark.parametrize("persona", [*security.ALLOWED_PERSONAS, 0x40000, 0x400000, 0x100000, 0xFFFFFFFE, 0x7FFFFFFF, 1])
def test_personality_edges(persona):
    assert _persona_refused(persona) == (persona not in security.ALLOWED_PERSONAS)


def test_every_denied_name_is_a_system_call():
    """libseccomp skips a name it cannot resolve (the filter is built per architecture), so a typo in
    DENIED_SYSCALLS would deny nothing, silently."""
    arches = (pyseccomp.Arch.X86_64, pyseccomp.Arch.AARCH64, pyseccomp.Arch.X86)
    unknown = [n for n in security.DENIED_SYSCALLS if all(pyseccomp.resolve_syscall(a, n) < 0 for a in arches)]
    assert not unknown
    assert len(set(security.DENIED_SYSCALLS)) == len(security.DENIED_SYSCALLS)


def test_docs_table_lists_exactly_the_denied_calls():
    """docs/seccomp.md's denylist table is the reviewed list: a call added or dropped in one place only
    fails here."""
    with open(os.path.join(REPO, "docs", "seccomp.md"), encoding="utf-8") as f:
        text = f.read()
    table = text.split("<!-- denied-syscalls:", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines()[1:] if line.startswith("| `")]
    documented = [name for row in rows for name in re.findall(r"`([a-z0-9_]+)`", row.split(" | ")[0])]
    assert sorted(documented) == sorted(security.DENIED_SYSCALLS)
    assert len(documented) == len(set(documented))
