"""Services that survive a reboot: ``lg system boot`` and ``lg system install-service``.

``boot`` is the documented boot entry point (docs/architecture.md, "Supervision"):
after a reboot (or anything that killed every container and the monitor and
emptied ``run/``) it releases what the dead containers still hold on disk
(network leases) and starts, through the monitor, every container whose restart
policy asks for it (runtime/restart.wanted_at_boot), services a compose project
declared dependencies for after what they depend on. ``install_service`` writes
the systemd unit shipped in ``layergit/systemd/`` (one for the system instance,
one for users' instances) with this lg and this root filled in, and enables it
when systemd runs.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import dataclass

from ..compose import DEPENDS_ON, PROJECT, SERVICE
from ..errors import LgError, NotFound, UsageError
from ..runtime.restart import wanted_at_boot
from ..runtime.state import Record
from .container_lookup import registry
from .container_removal import release_network
from .containers import start
from .repo import Repo


@dataclass(frozen=True)
class Booted:
    id: str
    name: str
    error: str  # "" when it started


def boot(repo: Repo) -> list[Booted]:
    """Start what the restart policies ask for at boot; one failure does not stop the others."""
    reg = registry(repo)
    wanted: list[Record] = []
    for cid in reg.ids():
        cdir = reg.container(cid)
        try:
            record = cdir.record()
        except NotFound:
            continue
        raw, st = cdir.raw_state(), cdir.state()
        if st.running:
            continue
        if raw.status != st.status:  # ended with nobody watching: say when it was found so, once
            with cdir.lock():
                cdir.save_state(st)
        release_network(repo, cid)  # a lease of the previous boot, whatever the policy
        was_running = raw.status in ("running", "paused", "restarting")
        policy = record.spec.restart
        if wanted_at_boot(policy, was_running, raw.stopped_by_user, st.exit_code, raw.restart_count):
            wanted.append(record)
    out = []
    for record in dependency_order(wanted):
        try:
            start(repo, record.id)
            out.append(Booted(record.id, record.name, ""))
        except LgError as exc:
            out.append(Booted(record.id, record.name, str(exc)))
    return out


def dependency_order(records: list[Record]) -> list[Record]:
    """Oldest first, but a compose service after the services of its project it depends on
    (a dependency not among ``records`` is not waited for; a cycle keeps creation order)."""
    records = sorted(records, key=lambda r: r.created)
    by_service = {(r.labels.get(PROJECT), r.labels.get(SERVICE)): r for r in records if r.labels.get(SERVICE)}
    done: list[Record] = []
    seen: set[str] = set()

    def visit(record: Record, path: tuple[str, ...]) -> None:
        if record.id in seen or record.id in path:
            return
        for dep in (record.labels.get(DEPENDS_ON) or "").split(","):
            target = by_service.get((record.labels.get(PROJECT), dep.split(":")[0]))
            if target is not None:
                visit(target, path + (record.id,))
        seen.add(record.id)
        done.append(record)

    for record in records:
        visit(record, ())
    return done


UNITS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "systemd")
_UNQUOTED = re.compile(r"[A-Za-z0-9/._+:@-]+")  # what an ExecStart word may hold without escaping


@dataclass(frozen=True)
class Installed:
    path: str
    unit: str
    enabled: bool
    note: str


def unit_name(root: str, default_root: str) -> str:
    """``layergit.service`` for the default root, ``layergit-HASH.service`` for another."""
    if os.path.abspath(root) == os.path.abspath(default_root):
        return "layergit.service"
    return f"layergit-{hashlib.sha256(os.path.abspath(root).encode()).hexdigest()[:12]}.service"


def render_unit(user: bool, lg: str, root: str) -> str:
    """The shipped unit with ``lg`` (an absolute path) and the root filled in."""
    for what, value in (("lg", lg), ("the root", root)):
        if not os.path.isabs(value) or not _UNQUOTED.fullmatch(value):
            raise UsageError(f"{what} {value[:80]!r} must be an absolute path of letters, digits and ._+:@-"
                             " to go into a systemd unit")
    with open(os.path.join(UNITS, "layergit-user.service" if user else "layergit.service")) as f:
        return f.read().replace("@LG@", lg).replace("@ROOT@", root)


def install_service(repo: Repo, lg: str, user: bool, unit_dir: str | None, default_root: str,
                    enable: bool = True) -> Installed:
    """Write the unit (atomically) into ``unit_dir`` (default: systemd's directory for
    the system or the user's instance) and enable it if systemd is running."""
    root = repo.root.path
    text = render_unit(user, lg, root)
    if unit_dir is None:
        if user:
            config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
            unit_dir = os.path.join(config, "systemd", "user")
        else:
            unit_dir = "/etc/systemd/system"
    name = unit_name(root, default_root)
    os.makedirs(unit_dir, exist_ok=True)
    path = os.path.join(unit_dir, name)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    scope = ["--user"] if user else []
    if not enable:
        return Installed(path, name, False, "")
    if not os.path.isdir("/run/systemd/system"):
        return Installed(path, name, False, f"systemd is not running here: enable it later with"
                                             f" systemctl {' '.join(scope + ['enable', name])}")
    for args in (["daemon-reload"], ["enable", name]):
        done = subprocess.run(["systemctl", *scope, *args], capture_output=True, text=True)
        if done.returncode:
            raise LgError(f"systemctl {' '.join(scope + args)}: {done.stderr.strip()[:200]}")
    return Installed(path, name, True, "")
