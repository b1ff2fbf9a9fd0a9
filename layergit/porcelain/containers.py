"""Containers: create, start, run, stop, kill, restart, rm, ps, logs, wait, inspect.

A container is a directory under ``ROOT/containers`` (runtime.state) plus a ref,
``refs/layergit/containers/ID``, that keeps its image commit (and so its cached
rootfs) alive through ``lg gc``. Creation is all-or-nothing: a failure removes
the directory, the name and the ref again.

Whatever kills lg, ``--rm`` holds, and so does "nothing of a container that never
ran is kept". Ctrl-C, SIGTERM and SIGHUP raise where lg is (cli.main), so the
``finally`` paths below remove the container. For SIGKILL nothing runs in lg, so
the container has an *owner* (Registry.own): a marker naming the process that
will remove it, with that process's start time, made before the container exists
and dropped after it is gone. Every creation owns its container until it is made
(before its name, which lg gc then spares); lg run owns the containers it creates (the monitor
takes over a detached ``--rm`` one once it started it), lg build its RUN steps'.
``sweep`` removes, once all of a container's owners are dead and it is not
running, every owned container that is ``--rm`` (build steps are) or never
started; one that ran and is not ``--rm`` is just disowned. It runs at the start
of create (so lg run and lg build), lg ps, after lg rm, and in lg gc, and costs
one listdir of a directory holding only the markers of containers in flight: no
scan of every container on the run path. A foreground container dies with its lg
(PDEATHSIG, runtime.process) and a build step's runner with its build, so the
sweep never has to kill anything but stragglers in a dead container's cgroup.
It also thaws a running container that a killed lg commit or lg diff left frozen
(container_layer records its freezer the same way).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
import time

from .. import root
from ..errors import Conflict, ExitCode, LgError, NotFound, UsageError
from ..removal import remove_tree
from ..runtime import users
from ..runtime.cgroups import WITHOUT_LIMITS, Cgroup, delegated, of_container, record_place
from ..runtime.net import DEFAULT, NetworkKind, NetworkMode
from ..runtime.rootless.idmap import inside
from ..runtime.spec import Mount, Spec
from ..runtime.state import (
    ID,
    ContainerDir,
    Record,
    Registry,
    State,
    check_name,
    now_iso,
    wait_for,
)
from . import rootless, runopts, volumes
from .checkout import cached_rootfs
from .container_lookup import find, registry, sweep
from .container_removal import CONTAINER_REFS, dispose
from .mountspec import MountRequest
from .names_generator import random_name
from .repo import Repo


def _check_names(options: runopts.RunOptions) -> None:
    """The names a container takes (its own, its host name, its aliases) end up in file
    names and /etc/hosts lines: each must follow its grammar before anything is made."""
    if options.name is not None:
        check_name(options.name)
    if options.hostname is not None:
        runopts.dns_name(options.hostname, "--hostname", 64)  # the kernel's HOST_NAME_MAX
    for alias in options.aliases:
        runopts.dns_name(alias, "--network-alias", 253)


def _notice(text: str) -> None:
    if root.on_notice is not None:
        root.on_notice(text)


def _without_root(resources, published, devices) -> str | None:
    """What lg without root says before it makes a container: limits it cannot enforce here
    (one warning, and the container runs), ports it cannot publish and devices the user
    may not open (refused: the host's node is bound in, so the host's modes decide); no
    container at all where the host refused it a user namespace. Returns the cgroup v2
    subtree delegated to the user where the container's cgroup goes (None: it has none)."""
    rootless.require("a container")
    if not inside():
        return None
    root = delegated()
    cgroup = Cgroup("", delegated_root=root)
    dropped = cgroup.unenforceable(bool(resources.memory), bool(resources.cpus), bool(resources.pids))
    if dropped and root is None:
        _notice(f"warning: {WITHOUT_LIMITS}")
    elif dropped:
        _notice(f"warning: lg without root cannot enforce {' or '.join(dropped)} here: the cgroup v2"
                f" subtree delegated to this user ({root}) has no controller for it;"
                " the container runs without")
    from ..runtime.rootless import netstack  # lg without root only: its imports are a run's start-up

    netstack.check_ports(published)
    for device in devices:
        wanted = (os.R_OK if "r" in device.access else 0) | (os.W_OK if "w" in device.access else 0)
        if wanted and not os.access(device.host, wanted):
            raise LgError(f"cannot give the container {device.host} without root: this user may not"
                          f" open it ({stat.filemode(device.mode | stat.S_IFCHR)[1:]} on the host)")
    return root


def _etc_files(cdir: ContainerDir, hostname: str, network: NetworkMode, extra_hosts: list[str],
               options: runopts.RunOptions) -> None:
    from ..runtime.net import initial_hosts

    with open(cdir.file("hostname"), "w") as f:
        f.write(hostname + "\n")
    with open(cdir.file("hosts"), "w") as f:
        f.write(initial_hosts(hostname, extra_hosts, network.is_host))
    try:
        with open("/etc/resolv.conf") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    if not network.is_host:  # a loopback resolver of the host is not reachable from the container
        lines = [line for line in lines if not re.match(r"^\s*nameserver\s+(127\.|::1)", line)]
    with open(cdir.file("resolv.conf"), "w") as f:
        f.write("\n".join(runopts.resolv_conf(options, lines)) + "\n")


def _write_cidfile(path: str, cid: str) -> None:
    """--cidfile: the id, in a file that must not exist (Docker's guard against two
    containers sharing one)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    except FileExistsError:
        raise Conflict(f"container ID file found, make sure the other container isn't running"
                       f" or delete {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot write --cidfile {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write(cid)


def _remove_cidfile(path: str, cid: str) -> None:
    try:
        with open(path) as f:
            if f.read() != cid:
                return
        os.unlink(path)
    except OSError:
        pass


def _reserve_name(reg: Registry, cid: str, wanted: str | None) -> str:
    """Reserve ``wanted`` for container ``cid``, or without one a random adjective_noun
    (suffixed once the plain names keep clashing); returns the name reserved."""
    for attempt in range(20):
        candidate = wanted or random_name() + (f"_{attempt}" if attempt > 10 else "")
        reg.own(cid, candidate)  # before the name: lg gc spares the names of owned ids (Registry.leftovers)
        try:
            reg.reserve_name(candidate, cid)
            return candidate
        except Conflict:
            reg.disown(cid, os.getpid())
            if wanted:
                raise
    raise Conflict("no free random container name after 20 attempts; give one with --name")


def create(repo: Repo, image: str, options: runopts.RunOptions, owned: bool = False) -> str:
    """Create a container from ``image``; returns its id. Nothing is left behind on failure.

    We own it (module docstring) from before its name is reserved, so that ``lg gc``
    leaves that name alone while it is made and the next sweep removes what a killed
    creation left. ``owned``: we stay its owner once it is made, so that if we are killed
    before we start it, the next sweep removes it; otherwise (lg create) it is the user's.
    """
    sweep(repo)
    _check_names(options)
    labels = runopts.labels(options.labels, options.label_files)
    runopts.check_platform(options.platform)
    shm_size = runopts.parse_size(options.shm_size, "--shm-size") if options.shm_size else None
    if options.stop_timeout is not None and options.stop_timeout < -1:
        raise UsageError("--stop-timeout must be a number of seconds (-1: wait forever)")
    if options.cidfile and os.path.lexists(options.cidfile):
        raise Conflict(f"container ID file found, make sure the other container isn't running"
                       f" or delete {options.cidfile}")
    runopts.resolv_conf(options, [])  # checked before anything is made
    from ..runtime.health import configure
    from ..runtime.logfile import parse_log_opts

    policy = _restart_policy(options.restart, options.auto_remove, "conflicting options: --restart and --rm")
    log_opts = parse_log_opts(options.log_opts, options.log_driver)
    img = repo.image_at(image)
    healthcheck = configure(img.config.get("Healthcheck"), options.health)
    process, resources, requests = runopts.build(options, img.config, repo.root.cache_dir("seccomp"))
    network = _network_mode(repo, runopts.network_mode(options))
    published = runopts.ports(options, img.config, network)
    extra_hosts = runopts.extra_hosts(options, network.kind)
    sysctls = runopts.sysctls(options, network.kind)
    mac = runopts.mac_address(options, network.kind)
    devices = [runopts.device(d) for d in options.devices]
    cgroup_root = _without_root(resources, published, devices)
    stop_signal = options.stop_signal or img.config.get("StopSignal") or "SIGTERM"
    try:
        _signal_number(stop_signal)  # checked now: lg stop must never be the first to find out
    except UsageError:
        whose = "--stop-signal" if options.stop_signal else "the image's StopSignal"
        raise UsageError(f"{whose} {stop_signal!r} is not a signal") from None
    lower = cached_rootfs(repo, img, image)
    reg = registry(repo)
    cid = os.urandom(32).hex()
    cdir = reg.container(cid)
    name = ""
    ref_set = False
    made: list[str] = []  # volumes this creation made
    held = contextlib.ExitStack()
    try:
        name = _reserve_name(reg, cid, options.name)
        os.makedirs(cdir.path, mode=0o700)
        for sub in ("upper", "work", "merged"):
            os.mkdir(cdir.file(sub), 0o700 if sub != "upper" else 0o755)
        record_place(cdir, cgroup_root)
        mounts = _mounts(repo, requests, lower, cid, options.auto_remove, made, held)
        hostname = options.hostname or cid[:12]
        _etc_files(cdir, hostname, network, extra_hosts, options)
        spec = Spec(cid, name, lower, cdir.path, process, hostname, options.read_only, mounts, resources,
                    network, options.init, stop_signal, published,
                    list(options.aliases), extra_hosts, options.stop_timeout, shm_size, sysctls, mac,
                    policy, healthcheck, log_opts, devices, options.auto_remove)
        host_config = {
            "Memory": resources.memory or 0,
            "NanoCpus": int((resources.cpus or 0) * 1e9),
            "PidsLimit": resources.pids,
            "ReadonlyRootfs": options.read_only,
            "NetworkMode": network.to_json(),
            "PortBindings": [p.to_json() for p in published],
            "AutoRemove": options.auto_remove,
            "Init": options.init,
            "CapAdd": options.cap_add,
            "CapDrop": options.cap_drop,
            "SecurityOpt": options.security_opt,
            "ExtraHosts": extra_hosts,
            "Dns": options.dns,
            "DnsSearch": options.dns_search,
            "DnsOptions": options.dns_options,
            "Sysctls": sysctls,
            "Devices": [{"PathOnHost": d.host, "PathInContainer": d.path, "CgroupPermissions": d.access}
                        for d in devices],
        }
        record = Record(cid, name, image, img.id.hex(), now_iso(), spec, img.config, host_config,
                        options.auto_remove, labels)
        cdir.write_json("container.json", record.to_json())
        held.close()
        if options.cidfile:
            _write_cidfile(options.cidfile, cid)
        cdir.save_state(State())
        with cdir.lock():  # the ref's writers hold it (container_removal.STALE_REF_LOCK)
            repo.store.set_ref(CONTAINER_REFS + cid, img.id, None, f"create container {name}")
            ref_set = True
    except BaseException:
        if options.cidfile and os.path.isdir(cdir.path):  # ours only if the container got that far
            _remove_cidfile(options.cidfile, cid)
        if os.path.isdir(cdir.path):
            remove_tree(cdir.path)
        volumes.undo(repo, made)
        held.close()
        if name:
            reg.release_name(name, cid)
        if ref_set:
            with cdir.lock():
                repo.store.delete_ref(CONTAINER_REFS + cid)
        reg.disown(cid)
        raise
    if not owned:
        reg.disown(cid, os.getpid())  # complete: the user's (container.json is there for Registry.leftovers)
    return cid


def _mounts(repo: Repo, requests: list[MountRequest], lower: str, cid: str, auto_remove: bool,
            made: list[str], held: contextlib.ExitStack) -> list[Mount]:
    """The container's mounts, volumes made or found; with any volume, ``held`` gets the
    volumes' lock, to keep until the record names them (volumes.py)."""
    if any(r.kind == "volume" for r in requests):
        held.enter_context(volumes.lock(repo))
    return volumes.attach(repo, requests, lower, cid, auto_remove, made)


def _network_mode(repo: Repo, mode: NetworkMode) -> NetworkMode:
    """What --network names must exist: the container (recorded by its id) or the network
    (but the default one, made on first use)."""
    if mode.container:
        return NetworkMode(NetworkKind.CONTAINER, find(repo, mode.container).id)
    if mode.bridged and mode.name != DEFAULT:
        from ..runtime.net.ipam import Networks

        Networks(repo.root.path).get(mode.name)
    return mode


def _spec(cdir: ContainerDir) -> Spec:
    return cdir.record().spec


def start(repo: Repo, ref: str, attach: bool = False) -> int | None:
    """Start a created or exited container; with ``attach``, in the foreground (returns its exit code).

    An ``--rm`` container is owned by us while we start it (module docstring): in
    the foreground until it is removed, detached until the monitor has it.
    """
    cdir = find(repo, ref)
    record = cdir.record()
    reg = registry(repo)
    if attach:
        if cdir.state().running:
            raise Conflict(f"container {ref} is already running")
        if record.auto_remove:
            reg.own(cdir.id, record.name)
        try:
            code = start_attached(repo, cdir)
        finally:
            if record.auto_remove:
                remove(repo, [cdir.id], force=True)
            elif cdir.raw_state().started_at:
                reg.disown(cdir.id, os.getpid())  # it ran: the user's now
        if record.spec.restart.name != "no":
            _hand_over(repo, cdir, record, code)
        return code
    from ..runtime.client import refused, request

    if record.auto_remove:
        reg.own(cdir.id, record.name)
    reply = request(repo.root.path, {"op": "start", "id": cdir.id}, check=False)
    if not reply.get("ok"):
        if record.auto_remove and os.path.isdir(cdir.path) and not cdir.state().running:
            remove(repo, [cdir.id], force=True)
        raise refused(reply, "the container did not start")
    if record.auto_remove:  # the monitor removes it when it exits; the sweep, if the monitor dies first
        monitor = cdir.raw_state().monitor_pid
        if monitor:
            reg.own(cdir.id, record.name, monitor)
    reg.disown(cdir.id, os.getpid())
    return None


def _hand_over(repo: Repo, cdir: ContainerDir, record: Record, code: int) -> None:
    """A foreground container ended and its policy restarts it: the monitor does, as
    Docker's daemon restarts a ``docker run`` container once the client has its exit code."""
    from ..runtime.client import request
    from ..runtime.restart import decide

    with cdir.lock():
        st = cdir.raw_state()
        if not decide(record.spec.restart, code, st.restart_count, st.stopped_by_user):
            return
        st.status = "restarting"
        cdir.save_state(st)
    request(repo.root.path, {"op": "adopt", "id": cdir.id})


def start_attached(repo: Repo, cdir: ContainerDir) -> int:
    """Run a container in the foreground until it exits; returns its exit code.

    Removing it afterwards is the caller's business (start, or a build step that
    first reads its writable layer).
    """
    from ..runtime.attach import run_attached
    from ..runtime.rootfs import init_binary

    if cdir.state().running:
        raise Conflict(f"container {cdir.id[:12]} is already running")
    spec = _spec(cdir)
    return run_attached(cdir, spec, init_binary() if spec.init else None, repo.root.path)


def run(repo: Repo, image: str, options: runopts.RunOptions, detach: bool) -> tuple[str, int | None]:
    """create + start; returns (id, exit code or None when detached).

    As with Docker, lg's own failure to run the container exits 125 (126 and 127
    come from the command); nothing of a container that never ran is kept.
    """
    try:
        cid = create(repo, image, options, owned=True)
    except LgError as exc:
        exc.exit_code = ExitCode.RUN_FAILED
        raise
    try:
        return cid, start(repo, cid, attach=not detach)
    except BaseException as exc:
        if os.path.isdir(repo.root.container(cid)) and not _ran(repo, cid):
            remove(repo, [cid], force=True)
        command_failed = (ExitCode.CANNOT_EXECUTE, ExitCode.COMMAND_NOT_FOUND)
        if isinstance(exc, LgError) and exc.exit_code not in command_failed:
            exc.exit_code = ExitCode.RUN_FAILED
        raise


def _ran(repo: Repo, cid: str) -> bool:
    """Whether the container's command ever started (a failed start records an exit, not a start)."""
    try:
        return bool(find(repo, cid).raw_state().started_at)
    except NotFound:
        return False


def _signal_number(sig: str | int) -> int:
    """A signal by number or name, as Docker's ParseSignal takes it: 9, KILL, SIGKILL,
    SIGRTMIN+3 (systemd's stop signal); UsageError for anything else. An image names
    its StopSignal, so a name is looked up as a signal, never as any attribute."""
    text = str(sig).upper()
    rt = re.fullmatch(r"(?:SIG)?RT(MIN|MAX)(?:([+-])([0-9]{1,2}))?", text)
    if isinstance(sig, int) or re.fullmatch(r"[0-9]{1,3}", text):
        number = int(sig)
    elif rt:
        base = signal.SIGRTMIN if rt[1] == "MIN" else signal.SIGRTMAX
        number = base + (int(rt[3] or 0) * (-1 if rt[2] == "-" else 1))
        if not signal.SIGRTMIN <= number <= signal.SIGRTMAX:
            number = 0
    else:
        name = text if text.startswith("SIG") else "SIG" + text
        number = int(signal.Signals[name]) if name in signal.Signals.__members__ else 0
    if not 0 < number <= signal.SIGRTMAX:
        raise UsageError(f"unknown signal {sig!r}")
    return number


_INFORMING = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT,
              signal.SIGSTOP, signal.SIGTSTP, signal.SIGCHLD, signal.SIGURG)  # they ask, they do not end


def _stopped_by_user(cdir: ContainerDir) -> State:
    """Record that the user stops the container: no restart policy brings it back (a
    restart it was waiting for is called off), and ``unless-stopped`` not even at boot."""
    with cdir.lock():
        st = cdir.raw_state()
        st.stopped_by_user = True
        if st.status == "restarting":
            st.status = "exited"
        cdir.save_state(st)
    return cdir.state()


def kill(repo: Repo, refs: list[str], sig: str = "SIGKILL") -> list[str]:
    number = _signal_number(sig)
    done = []
    for ref in refs:
        cdir = find(repo, ref)
        st = cdir.state()
        if not st.running:
            raise Conflict(f"container {ref} is not running")
        if number not in _INFORMING:
            _stopped_by_user(cdir)
        cdir.log_event("kill", signal=str(number))
        try:
            os.kill(st.pid, number)
        except ProcessLookupError:
            pass
        if st.status == "paused":
            _resume(cdir)
        done.append(ref)
    return done


def _wait_stopped(cdir: ContainerDir, timeout: float | None) -> bool:
    return wait_for(lambda: not cdir.state().running or cdir.raw_state().status == "exited", timeout)


def stop(repo: Repo, refs: list[str], timeout: float | None = None, sig: str | None = None) -> list[str]:
    """StopSignal (or ``sig``), then SIGKILL after ``timeout`` seconds (Docker's stop);
    without one, the container's --stop-timeout or 10 (-1: wait for as long as it takes)."""
    number = _signal_number(sig) if sig else None
    done = []
    for ref in refs:
        cdir = find(repo, ref)
        st = _stopped_by_user(cdir)
        if st.running:
            spec = _spec(cdir)
            wait = timeout if timeout is not None else spec.stop_timeout
            wait = 10 if wait is None else wait
            try:
                os.kill(st.pid, number or _signal_number(spec.stop_signal or "SIGTERM"))
            except ProcessLookupError:
                pass
            if st.status == "paused":
                _resume(cdir)
            if not _wait_stopped(cdir, None if wait < 0 else wait):
                _kill_all(cdir, st.pid)
                _wait_stopped(cdir, 10)
            cdir.log_event("stop")
        done.append(ref)
    return done


def pause(repo: Repo, refs: list[str], frozen: bool = True) -> list[str]:
    """lg pause (``frozen``) and lg unpause: every process of the container stopped or
    resumed by the cgroup freezer (v1's freezer.state, v2's cgroup.freeze), recorded as
    ``paused`` in state.json under the container's lock."""
    done = []
    for ref in refs:
        cdir = find(repo, ref)
        with cdir.lock():
            st = cdir.state()
            if not st.running:
                raise Conflict(f"container {ref} is not running")
            if (st.status == "paused") == frozen:
                raise Conflict(f"container {ref} is {'already' if frozen else 'not'} paused")
            of_container(cdir).freeze(frozen)
            st.status = "paused" if frozen else "running"
            cdir.save_state(st)
        done.append(ref)
    return done


def _resume(cdir: ContainerDir) -> None:
    """Thaw a paused container that was just signalled, as Docker's stop and kill do: a
    frozen process would not act on the signal (on v1, not even on SIGKILL)."""
    with cdir.lock():
        st = cdir.state()
        if st.status == "paused":
            of_container(cdir).freeze(False)
            st.status = "running"
            cdir.save_state(st)


def rename(repo: Repo, ref: str, new: str) -> None:
    """lg rename: the new name is reserved before the record changes, the old one released
    after, so that neither is ever free for another container meanwhile."""
    check_name(new)
    reg = registry(repo)
    cdir = find(repo, ref)
    with cdir.lock():
        record = cdir.record()
        if record.name == new:
            raise Conflict(f"container {ref} is already named {new}")
        reg.reserve_name(new, cdir.id)
        old = record.name
        try:
            record.name = record.spec.name = new
            cdir.write_json("container.json", record.to_json())
        except BaseException:
            reg.release_name(new, cdir.id)
            raise
        reg.release_name(old, cdir.id)
        cdir.log_event("rename", oldName=old)
    if record.spec.network.bridged:
        from ..runtime.net import controller

        controller.rename(repo.root.path, cdir.id, new)


def _kill_all(cdir: ContainerDir, pid: int) -> None:
    """SIGKILL every process of a running container: its cgroup's, and its PID 1, whose
    death ends its PID namespace (all lg without root has where it has no cgroup)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    of_container(cdir).kill(signal.SIGKILL)


def restart(repo: Repo, refs: list[str], timeout: float | None = None) -> list[str]:
    for ref in refs:
        stop(repo, [ref], timeout)
        start(repo, ref)
    return refs


def remove(repo: Repo, refs: list[str], force: bool = False, anonymous_volumes: bool = False) -> list[str]:
    """Remove containers (running ones only with ``force``): directory, cgroup, name, ref; then sweep.
    Their anonymous volumes go too with ``anonymous_volumes`` (lg rm -v) or when they were --rm."""
    reg = registry(repo)
    removed = []
    for ref in refs:
        cdir = reg.find(ref)
        st = cdir.state()
        if st.running and not force:
            raise Conflict(f"container {ref} is running: stop it first or use rm -f")
        if st.running or st.status == "restarting":
            _stopped_by_user(cdir)  # its policy must not start it again while it is removed
        if st.running:
            _kill_all(cdir, st.pid)
            if st.status == "paused":
                of_container(cdir).freeze(False)  # a frozen task dies only once thawed (v1)
            _wait_stopped(cdir, 10)
        try:
            record = cdir.record()
        except NotFound:
            record = None
        dispose(repo, reg, cdir, record, None)
        if record is not None and (anonymous_volumes or record.auto_remove):
            volumes.release(repo, cdir.id, record.spec.mounts)
        removed.append(ref)
    sweep(repo)
    return removed


def prune(repo: Repo) -> list[str]:
    """lg container prune: remove every container that is not running or paused; one
    started while we look stays (``remove`` refuses it), one removed meanwhile is skipped."""
    removed = []
    for cid in registry(repo).ids():
        if registry(repo).container(cid).state().running:
            continue
        try:
            removed += remove(repo, [cid])
        except (Conflict, NotFound):
            continue
    return removed


def prune_refs(repo: Repo) -> int:
    """Drop container refs whose container is gone (removed by the monitor after --rm)."""
    reg = registry(repo)
    live = set(reg.ids())
    dropped = 0
    for ref, _ in repo.store.refs(CONTAINER_REFS):
        cid = ref[len(CONTAINER_REFS):]
        if cid in live:
            continue
        cdir = reg.container(cid) if ID.fullmatch(cid) else None
        with cdir.lock() if cdir is not None else contextlib.nullcontext():
            if cdir is not None and os.path.isdir(cdir.path):
                continue  # being created: its directory comes before its ref
            try:
                repo.store.delete_ref(ref)
                dropped += 1
            except NotFound:
                pass
        if cdir is not None:
            cdir.forget_lock()
    return dropped


def wait(repo: Repo, refs: list[str], condition: str = "not-running") -> list[int]:
    """Exit codes once the containers stopped; with ``condition`` "healthy", 0 once each is
    healthy (UsageError for a container without a health check, Conflict for one that
    stops or turns unhealthy first: waiting longer would be waiting forever)."""
    if condition == "healthy":
        return [_wait_healthy(find(repo, ref), ref) for ref in refs]
    codes = []
    for ref in refs:
        cdir = find(repo, ref)
        _wait_stopped(cdir, None)
        wait_for(lambda cdir=cdir: cdir.raw_state().status == "exited" or not os.path.isdir(cdir.path), 5)
        codes.append(cdir.state().exit_code)
    return codes


def _wait_healthy(cdir: ContainerDir, ref: str) -> int:
    from ..runtime.checks import read_health

    if cdir.record().spec.healthcheck is None:
        raise UsageError(f"container {ref} has no health check")
    while True:
        st = cdir.state()
        health = read_health(cdir)
        if not st.running and st.status != "restarting":
            raise Conflict(f"container {ref} stopped before it was healthy")
        if st.running and health is not None and health.status == "healthy":
            return 0
        if health is not None and health.status == "unhealthy" and _spec(cdir).restart.name == "no":
            raise Conflict(f"container {ref} is unhealthy")
        time.sleep(0.1)


def _restart_policy(text: str | None, auto_remove: bool, conflict: str):
    """``--restart`` parsed; a policy that restarts is refused for an ``--rm`` container."""
    from ..runtime.restart import RestartPolicy

    policy = RestartPolicy.parse(text) if text else RestartPolicy()
    if auto_remove and policy.name != "no":
        raise UsageError(conflict)
    return policy


def update(repo: Repo, refs: list[str], restart_policy: str | None) -> list[str]:
    """lg update: change a container's restart policy (the one setting of Docker's update
    lg takes); the monitor reads it at the container's next end."""
    if restart_policy is None:
        raise UsageError("lg update needs --restart")
    for ref in refs:
        cdir = find(repo, ref)
        with cdir.lock():
            raw = cdir.record().to_json()
            policy = _restart_policy(restart_policy, raw.get("auto_remove", False),
                                     f"container {ref} is removed when it exits (--rm): no restart policy")
            raw["spec"]["restart"] = policy.to_json()
            raw["host_config"]["RestartPolicy"] = policy.to_json()
            cdir.write_json("container.json", raw)
    return refs


def exec_(repo: Repo, ref: str, command: list[str], interactive: bool = False, tty: bool = False,
          user: str | None = None, workdir: str | None = None, env: list[str] | None = None) -> int:
    """Run a command in a running container (its namespaces, cgroup, user, limits); returns its exit code."""
    from ..runtime.attach import exec_attached

    if not command:
        raise UsageError("lg exec needs a command")
    cdir = find(repo, ref)
    st = cdir.state()
    if not st.running:
        raise Conflict(f"container {ref} is not running")
    if st.status == "paused":
        raise Conflict(f"container {ref} is paused: unpause it before exec")  # a joiner would freeze too
    spec = _spec(cdir)
    process = spec.process
    process.args = list(command)
    process.stdin, process.tty = interactive, tty
    if user is not None:
        users.check(user)
        process.user = user
    if workdir is not None:
        if not os.path.isabs(workdir):
            raise UsageError(f"the working directory {workdir!r} must be absolute")
        process.cwd = workdir
    process.env = process.env + list(env or [])
    return exec_attached(st.pid, of_container(cdir), process, spec.hostname)
