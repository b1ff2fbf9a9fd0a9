"""The device filter's old name: the program is generated in bpf/devices.py, with the other eBPF programs.

cgroups.py and tests/test_cgroups_v2.py still import ``devfilter.program``; once they
import ``bpf.devices`` instead (where it is needed, not at the top: every container
start imports cgroups.py, and only a cgroup v2 host builds the program), this module goes.
"""

from __future__ import annotations


def program(rules: list[str]) -> bytes:
    """The filter for ``rules`` (bpf.devices.program), the assembler imported only when one is built."""
    from .bpf import devices

    return devices.program(rules)
