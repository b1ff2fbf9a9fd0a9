"""The device filter's old name: the program now lives in bpf/devices.py, with the other eBPF programs.

cgroups.py and tests/test_cgroups_v2.py still import ``devfilter.program``; once they
import ``bpf.devices`` instead, this module goes.
"""

from .bpf.devices import program

__all__ = ["program"]
