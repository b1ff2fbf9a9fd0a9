"""The container runtime: it knows paths and a container spec, never git.

parent side (spawn, cgroups, state) and child side (rootfs, capabilities, seccomp,
exec) of starting a container, in the spirit of runc's libcontainer. Nothing here
imports pygit2; the porcelain hands over a materialised rootfs directory.
"""
