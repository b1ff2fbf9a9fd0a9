"""Containers: create, start, run, stop, kill, restart, rm, ps, logs, wait, inspect.

A container is a directory under ``ROOT/containers`` (runtime.state) plus a ref,
``refs/layergit/containers/ID``, that keeps its image commit (and so its cached
rootfs) alive through ``lg gc``. Creation is all-or-nothing: a failure removes
the directory, the name and the ref again.
"""

from __future__ import annotations

import json
import os
import re
import signal
from dataclasses import asdict

from ..errors import Conflict, LgError, NotFound, UsageError
from ..removal import remove_tree
from ..runtime.cgroups import Cgroup
from ..runtime.spec import Spec
from ..runtime.state import ContainerDir, Record, Registry, State, now_iso, wait_for
from . import runopts
from .names_generator import random_name
from .repo import Repo, store_lock

CONTAINER_REFS = "refs/layergit/containers/"
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def registry(repo: Repo) -> Registry:
    return Registry(os.path.join(repo.root.path, "containers"))


def find(repo: Repo, ref: str) -> ContainerDir:
    return registry(repo).find(ref)


def _etc_files(cdir: ContainerDir, hostname: str, network: str) -> None:
    with open(cdir.file("hostname"), "w") as f:
        f.write(hostname + "\n")
    with open(cdir.file("hosts"), "w") as f:
        f.write("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        f.write(f"127.0.1.1\t{hostname}\n" if network != "host" else "")
    try:
        with open("/etc/resolv.conf") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    if network != "host":  # a loopback resolver of the host is not reachable from the container
        lines = [line for line in lines if not re.match(r"^\s*nameserver\s+(127\.|::1)", line)]
    with open(cdir.file("resolv.conf"), "w") as f:
        f.write("\n".join(lines) + "\n")


def create(repo: Repo, image: str, options: runopts.RunOptions) -> str:
    """Create a container from ``image``; returns its id. Nothing is left behind on failure."""
    if options.name is not None and not _NAME.match(options.name):
        raise UsageError(f"invalid container name {options.name!r}: use [a-zA-Z0-9][a-zA-Z0-9_.-]*")
    img = repo.image_at(image)
    process, resources, mounts = runopts.build(options, img.config, repo.root.cache_dir("seccomp"))
    network = _network_mode(repo, options)
    published = runopts.ports(options, img.config)
    lower = os.path.join(repo.root.cache, "rootfs", img.rootfs.hex())
    if not os.path.isdir(lower):  # the common case is a commit already materialised: no work at all
        from .checkout import cache

        with store_lock(repo):
            lower = cache(repo).materialise(repo.store, img.rootfs)
    reg = registry(repo)
    cid = os.urandom(32).hex()
    name = options.name
    for attempt in range(20):
        candidate = name or random_name() + (f"_{attempt}" if attempt > 10 else "")
        try:
            reg.reserve_name(candidate, cid)
            name = candidate
            break
        except Conflict:
            if options.name:
                raise
    cdir = ContainerDir(reg.dir, cid)
    try:
        os.makedirs(cdir.path, mode=0o700)
        for sub in ("upper", "work", "merged"):
            os.mkdir(cdir.file(sub), 0o700 if sub != "upper" else 0o755)
        hostname = options.hostname or cid[:12]
        _etc_files(cdir, hostname, options.network)
        spec = Spec(cid, name, lower, cdir.path, process, hostname, options.read_only, mounts, resources, network, options.init,
                    img.config.get("StopSignal") or "SIGTERM", published, list(options.aliases))
        host_config = {
            "Memory": resources.memory or 0,
            "NanoCpus": int((resources.cpus or 0) * 1e9),
            "PidsLimit": resources.pids,
            "ReadonlyRootfs": options.read_only,
            "NetworkMode": network,
            "PortBindings": published,
            "AutoRemove": options.auto_remove,
            "Init": options.init,
            "CapAdd": options.cap_add,
            "CapDrop": options.cap_drop,
            "SecurityOpt": options.security_opt,
        }
        record = Record(cid, name, image, img.id.hex(), now_iso(), asdict(spec), img.config, host_config, options.auto_remove)
        cdir.write_json("container.json", asdict(record))
        cdir.save_state(State())
        repo.store.set_ref(CONTAINER_REFS + cid, img.id, None, f"create container {name}")
    except BaseException:
        if os.path.isdir(cdir.path):
            remove_tree(cdir.path)
        reg.release_name(name, cid)
        raise
    return cid


def _network_mode(repo: Repo, options: runopts.RunOptions) -> str:
    """Validate --network: none, host, bridge (the default network), a network, container:ID."""
    mode = options.network
    if mode in ("none", "host", "bridge"):
        return mode
    if mode.startswith("container:"):
        return "container:" + find(repo, mode.partition(":")[2]).id
    from ..runtime.netconfig import Networks

    return Networks(repo.root.path).get(mode).name


def _spec(cdir: ContainerDir) -> Spec:
    return Spec.from_json(json.dumps(cdir.record().spec))


def start(repo: Repo, ref: str, attach: bool = False) -> int | None:
    """Start a created or exited container; with ``attach``, in the foreground (returns its exit code)."""
    cdir = find(repo, ref)
    if attach:
        from ..runtime.attach import run_attached

        if cdir.state().running:
            raise Conflict(f"container {ref} is already running")
        code = run_attached(cdir, _spec(cdir), runopts.init_binary(), repo.root.path)
        if cdir.record().auto_remove:
            remove(repo, [cdir.id], force=True)
        return code
    from ..runtime.client import request

    reply = request(repo.root.path, {"op": "start", "id": cdir.id})
    if not reply.get("ok"):
        error = LgError(reply.get("error", "the container did not start"))
        error.exit_code = reply.get("code", 125)
        if cdir.record().auto_remove and os.path.isdir(cdir.path):
            remove(repo, [cdir.id], force=True)
        raise error
    return None


def run(repo: Repo, image: str, options: runopts.RunOptions, detach: bool) -> tuple[str, int | None]:
    """create + start; returns (id, exit code or None when detached).

    As with Docker, lg's own failure to run the container exits 125 (126 and 127
    come from the command); nothing of a container that never ran is kept.
    """
    try:
        cid = create(repo, image, options)
    except LgError as exc:
        exc.exit_code = 125
        raise
    try:
        return cid, start(repo, cid, attach=not detach)
    except BaseException as exc:
        if os.path.isdir(os.path.join(registry(repo).dir, cid)) and not cdir_running(repo, cid):
            remove(repo, [cid], force=True)
        if isinstance(exc, LgError) and exc.exit_code not in (126, 127):
            exc.exit_code = 125
        raise


def cdir_running(repo: Repo, cid: str) -> bool:
    try:
        return find(repo, cid).state().running
    except NotFound:
        return False


def _signal_number(sig: str | int) -> int:
    if isinstance(sig, int) or str(sig).isdigit():
        return int(sig)
    name = str(sig).upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(getattr(signal, name))
    except AttributeError:
        raise UsageError(f"unknown signal {sig!r}") from None


def kill(repo: Repo, refs: list[str], sig: str = "SIGKILL") -> list[str]:
    number = _signal_number(sig)
    done = []
    for ref in refs:
        cdir = find(repo, ref)
        st = cdir.state()
        if not st.running:
            raise Conflict(f"container {ref} is not running")
        try:
            os.kill(st.pid, number)
        except ProcessLookupError:
            pass
        done.append(ref)
    return done


def _wait_stopped(cdir: ContainerDir, timeout: float | None) -> bool:
    return wait_for(lambda: not cdir.state().running or cdir.raw_state().status == "exited", timeout)


def stop(repo: Repo, refs: list[str], timeout: float = 10.0) -> list[str]:
    """StopSignal, then SIGKILL after ``timeout`` seconds (Docker's stop)."""
    done = []
    for ref in refs:
        cdir = find(repo, ref)
        st = cdir.state()
        if st.running:
            sig = _signal_number(_spec(cdir).stop_signal or "SIGTERM")
            try:
                os.kill(st.pid, sig)
            except ProcessLookupError:
                pass
            if not _wait_stopped(cdir, timeout):
                Cgroup(cdir.id).kill(signal.SIGKILL)
                _wait_stopped(cdir, 10)
        done.append(ref)
    return done


def restart(repo: Repo, refs: list[str], timeout: float = 10.0) -> list[str]:
    for ref in refs:
        stop(repo, [ref], timeout)
        start(repo, ref)
    return refs


def remove(repo: Repo, refs: list[str], force: bool = False) -> list[str]:
    """Remove containers (running ones only with ``force``): directory, cgroup, name, ref."""
    reg = registry(repo)
    removed = []
    for ref in refs:
        cdir = reg.find(ref)
        st = cdir.state()
        cgroup = Cgroup(cdir.id)
        if st.running:
            if not force:
                raise Conflict(f"container {ref} is running: stop it first or use rm -f")
            cgroup.kill(signal.SIGKILL)
            _wait_stopped(cdir, 10)
        try:
            record = cdir.record()
        except NotFound:
            record = None
        if cgroup.exists():
            cgroup.kill(signal.SIGKILL)
            cgroup.remove()
        if record is None or record.spec.get("network") not in ("none", "host"):
            _disconnect(repo, cdir.id)
        name = record.name if record else None
        with cdir.lock():
            if cdir.exists():
                remove_tree(cdir.path)
        cdir.forget_lock()
        if name:
            reg.release_name(name, cdir.id)
        try:
            repo.store.delete_ref(CONTAINER_REFS + cdir.id)
        except NotFound:
            pass
        removed.append(ref)
    return removed


def _disconnect(repo: Repo, cid: str) -> None:
    """Release what networking holds for a container, with or without a live monitor.

    Nothing to do when no network leases the container an address any more (its
    foreground run or the monitor detached it already): a start path worth keeping short.
    """
    from ..runtime.client import request
    from ..runtime.connect import release
    from ..runtime.netconfig import Networks

    nets = Networks(repo.root.path)
    if not any(h["id"] == cid for name in nets.names() for h in nets.leases(name).values()):
        return
    request(repo.root.path, {"op": "net-detach", "id": cid}, start=False)
    release(repo.root.path, cid)


def prune_refs(repo: Repo) -> int:
    """Drop container refs whose container is gone (removed by the monitor after --rm)."""
    reg = registry(repo)
    live = set(reg.ids())
    dropped = 0
    for ref, _ in repo.store.refs(CONTAINER_REFS):
        if ref[len(CONTAINER_REFS):] not in live:
            try:
                repo.store.delete_ref(ref)
                dropped += 1
            except NotFound:
                pass
    return dropped


def wait(repo: Repo, refs: list[str]) -> list[int]:
    codes = []
    for ref in refs:
        cdir = find(repo, ref)
        _wait_stopped(cdir, None)
        wait_for(lambda: cdir.raw_state().status == "exited" or not os.path.isdir(cdir.path), 5)
        codes.append(cdir.state().exit_code)
    return codes


def exec_(repo: Repo, ref: str, command: list[str], interactive: bool = False, tty: bool = False, user: str | None = None, workdir: str | None = None, env: list[str] | None = None) -> int:
    """Run a command in a running container (its namespaces, cgroup, user, limits); returns its exit code."""
    from ..runtime.attach import exec_attached

    if not command:
        raise UsageError("lg exec needs a command")
    cdir = find(repo, ref)
    st = cdir.state()
    if not st.running:
        raise Conflict(f"container {ref} is not running")
    spec = _spec(cdir)
    process = spec.process
    process.args = list(command)
    process.stdin, process.tty = interactive, tty
    if user is not None:
        process.user = user
    if workdir is not None:
        if not os.path.isabs(workdir):
            raise UsageError(f"the working directory {workdir!r} must be absolute")
        process.cwd = workdir
    process.env = process.env + list(env or [])
    return exec_attached(st.pid, Cgroup(cdir.id), process, spec.hostname)
