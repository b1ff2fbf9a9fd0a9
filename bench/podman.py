"""podman as a peer: a private store per scenario, on the harness's own filesystem.

Each container scenario that compares with podman gets its own podman storage:
`podman --root DIR --runroot RUN --tmpdir TMP`, with DIR in the scenario's directory
(on the dedicated loop filesystem, like every LG_ROOT) and RUN/TMP under /run (tmpfs,
where podman keeps them by default: /run/containers/storage, /run/libpod). So:

- podman's layers live on the same filesystem as lg's store, not on the root
  filesystem (ext4 without a journal here, shared with everyone's tests; see
  scratch.py for why that matters);
- no scenario sees another's images or layers, as no scenario sees another's LG_ROOT;
- the harness never touches anyone else's podman images or containers, and cleaning
  up is `podman rm -af` / `podman rmi -af` on a store that only it uses.

Everything else is podman's default (containers.conf: runc, cgroupfs, netavark, the
`podman` bridge; its IPAM database in /run/containers/networks is shared with other
podman users, so addresses never collide). Images and containers are still named
`lgbench-...`, so anything that does escape is recognisable.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from .timing import run


class Podman:
    def __init__(self, exe: str, scenario_dir: Path, tag: str):
        self.exe = exe
        self.root = scenario_dir / "podman-root"
        base = f"/run/lgbench-{os.getpid()}-{tag}"
        self.runroot = Path(base)
        self.tmpdir = Path(base + "-tmp")
        self.prefix = [
            exe, "--root", str(self.root), "--runroot", str(self.runroot), "--tmpdir", str(self.tmpdir),
        ]

    def argv(self, *args) -> list[str]:
        return [*self.prefix, *map(str, args)]

    def sh(self, *args) -> str:
        """The same command as shell code, for prepares."""
        return shlex.join(self.argv(*args))

    @property
    def marks(self) -> list[str]:
        """Strings in the command line of every process this store's podman leaves (conmon)."""
        return [str(self.root), str(self.runroot)]

    def cleanup(self, log) -> None:
        """Remove every container and image of this private store, then the store's run dirs.
        The store itself goes with the scratch directory."""
        for args in (("rm", "-af", "-t", "0"), ("rmi", "-af")):
            out = run(
                self.argv(*args), stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace"
            )
            if out.returncode != 0:
                lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
                log(f"warning: podman {' '.join(args)} in {self.root}: exit {out.returncode}"
                    + (f": {lines[-1].strip()}" if lines else ""))
        # containers/storage keeps its overlay directory mounted (a private bind mount);
        # unmount whatever of this store is still mounted, deepest first.
        for target in sorted(mounts_under(self.root, self.runroot, self.tmpdir), key=len, reverse=True):
            subprocess.run(["umount", "-l", target], capture_output=True)
        for d in (self.runroot, self.tmpdir):
            subprocess.run(["rm", "-rf", "--one-file-system", "--", str(d)], capture_output=True)


def mounts_under(*dirs: Path) -> list[str]:
    prefixes = [str(d).rstrip("/") + "/" for d in dirs]
    found = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                target = line.split()[4].replace("\\040", " ")
                if any((target + "/").startswith(p) for p in prefixes):
                    found.append(target)
    except OSError:
        pass
    return found
