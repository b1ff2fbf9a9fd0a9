"""The eBPF programs layergit loads, and the one assembler they are written with (asm.py).

Each program is generated in one module of this package, with the C it is equivalent
to in its docstring; loading and attaching it is its caller's business, through
syscalls.py.
"""
