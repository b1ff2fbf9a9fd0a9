"""layergit: version container images the way git versions code, and run them.

The package is importable without pulling in pygit2, pyroute2 or dulwich: start-up
time is a feature, so heavy modules are imported by the functions that need them.
The public Python API lives in :mod:`layergit.api`.
"""

__version__ = "0.1.0"
