"""The instructions of a stage, one function each, and STEPS, the table from keyword to function.

Modelled on imagebuilder's dispatchers.go: each function is headed by the syntax it
carries out, and all take the same arguments: the build running them (``Build``,
what a step may use of builder.py), the stage's ``State``, the instruction, an
Expander holding the variables as they stand before it, and the progress ``Step``
(for RUN's output). Each makes one commit whose message is the instruction as
written, variables expanded where Docker expands them (config-only instructions are
commits with the parent's rootfs), through ``Build.cached_or``, and returns whether
that commit came from the cache. Adding an instruction is one function and one
table entry.

FROM is not here: it starts a stage from the base the plan resolved (builder.py).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import posixpath
import re
import shlex
import tempfile
from dataclasses import dataclass, field, replace
from typing import Callable, Protocol

from ..errors import NotFound
from ..porcelain.repo import Repo
from ..porcelain.runopts import RunOptions
from ..store.mutable import MutableTree, PathError
from . import changes as config_changes
from . import container, files, gitsource
from .context import Context, Source, digest
from .dockerfile import (
    DockerfileError,
    Expander,
    Instruction,
    arg_declarations,
    check_flags,
    copy_words,
    heredoc_name,
    json_list,
    name_values,
    parse,
    split_flags,
)
from .events import BuildError, Step, StepOutput
from .mounts import Prepared, RunMount, cache_dir_name, open_cache, own, parse_run_mount, secret_dir
from .options import NETWORKS, BuildOptions

DEFAULT_SHELL = ["/bin/sh", "-c"]
# Docker passes these to RUN when given, but keeps them out of the cache and history.
PROXY_ARGS = frozenset(
    k
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
    for k in (name, name.lower())
)
_URL = re.compile(r"^https?://")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_NS = {
    "ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000,
    "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
}


@dataclass
class State:
    """Where a stage's build stands: its current commit and what the Dockerfile declared."""

    label: str
    total: int
    done: int = 0
    commit: bytes | None = None
    config: dict = field(default_factory=dict)
    rootfs: bytes | None = None
    args: dict[str, str | None] = field(default_factory=dict)
    cmd_set: bool = False

    def env(self) -> dict[str, str]:
        """Variables for expansion: declared ARGs, overridden by ENV (Docker's precedence)."""
        out = {k: v for k, v in self.args.items() if v is not None}
        out.update(item.partition("=")[::2] for item in self.config.get("Env") or [])
        return out


class Build(Protocol):
    """What a step may use of the build running it (builder.py's one implementation)."""

    repo: Repo
    options: BuildOptions
    name: str  # the Dockerfile's, for messages
    globals: dict[str, str | None]  # platform args and the ARGs before the first FROM

    @property
    def context(self) -> Context: ...  # opened on the first use

    def emit(self, event: object) -> None: ...

    def stage_result(self, ref: str) -> bytes | None:
        """The commit a stage built so far, by name or index; None if ``ref`` names none."""
        ...

    def cached_or(self, state: State, text: str, make: Callable[[object], bytes], extra: str = "",
                  prepare: Callable[[object], str] | None = None) -> bool:
        """The step's commit from the cache, else ``make``'s; the stage moves on to it."""
        ...

    def write(
        self, writer, state: State, text: str, rootfs: bytes | None = None, config: dict | None = None
    ) -> bytes:
        """A commit on the stage's current one: ``rootfs`` and ``config`` default to its own."""
        ...


StepFunction = Callable[[Build, State, Instruction, Expander, Step], bool]


def config_step(b: Build, state: State, text: str, config: dict, extra: str = "") -> bool:
    """A commit with the parent's rootfs and a new config."""
    return b.cached_or(state, text, lambda w: b.write(w, state, text, config=config), extra)


# -- the filesystem -----------------------------------------------------------------------


def run(b: Build, state: State, instr: Instruction, ex: Expander, step: Step) -> bool:
    """RUN [--network=default|none|host|bridge] [--mount=type=bind|cache|secret|tmpfs,...]...
    COMMAND | RUN ["EXECUTABLE", "ARG"...] | RUN <<EOF

    The command runs in a throw-away container on the stage's image (build.container)
    and its writable layer, mount points left out, is the new rootfs. Declared ARGs
    reach it as environment variables (ENV wins), and so do given proxy args,
    declared or not; only the first are part of the cache key, as in Docker. What a
    bind mount holds is part of the key too; a secret's value is not (build.mounts).
    """
    flags, rest = split_flags(instr.args)
    check_flags(instr, flags, {"network", "mount"}, b.name)
    run_mounts = [parse_run_mount(ex.word(v), state.config.get("WorkingDir")) for v in flags.get("mount", [])]
    network = (flags.get("network") or ["default"])[-1]
    network = b.options.network if network == "default" else network
    if network not in NETWORKS:
        raise DockerfileError(f"RUN --network={network}: use default, {', '.join(NETWORKS)}")
    argv, scripts = _command(state, rest, instr)
    env_names = {item.partition("=")[0] for item in state.config.get("Env") or []}
    arg_env = {k: v for k, v in state.args.items() if v is not None and k not in env_names}
    for key in PROXY_ARGS & b.options.build_args.keys():  # given, they reach RUN undeclared
        arg_env.setdefault(key, b.options.build_args[key])
    extra = "\n".join(f"{k}={v}" for k, v in sorted(arg_env.items()) if k not in PROXY_ARGS)
    text = instr.text()
    sources: dict[int, tuple[bytes, bool]] = {}  # bind and cache-from mounts: (tree, is a directory)

    def prepare(w) -> str:
        keyed = [extra]
        for n, m in enumerate(run_mounts):
            keyed.append(f"mount {m}")
            if m.kind == "bind" or (m.kind == "cache" and m.from_):
                with b.repo.store.writer() as own:  # its own pack: make checks it out before w's is done
                    sources[n] = _mount_source(b, m, own)
                if m.kind == "bind":
                    keyed.append(f"holding {sources[n][0].hex()}")
        return "\n".join(keyed)

    def make(w) -> bytes:
        env = [f"{k}={v}" for k, v in arg_env.items()]
        prepared = Prepared()
        try:
            _make_mounts(b, run_mounts, sources, prepared)
            options = RunOptions(env=env + prepared.env, network=network, entrypoint="", command=argv,
                                 mounts=prepared.mounts, tmpfs=prepared.tmpfs,
                                 image_volumes=False)  # a RUN step writes its VOLUME paths into the layer

            def output(stream, line) -> None:
                b.emit(StepOutput(step, stream, line))

            assert state.commit is not None  # RUN follows FROM
            code, rootfs = container.run(b.repo, state.commit, options, scripts, output, w)
        finally:
            prepared.close()
        if code:
            shown = " ".join(argv).replace("\n", "\\n")
            shown = shown if len(shown) <= 200 else shown[:197] + "..."
            raise BuildError(f'process "{shown}" did not complete successfully: exit code: {code}', code)
        return b.write(w, state, text, rootfs)

    return b.cached_or(state, text, make, prepare=prepare)


def _mount_source(b: Build, m: RunMount, w) -> tuple[bytes, bool]:
    """The tree a bind mount (or a cache's seed) holds: a path of the context, or of
    the stage or image ``from`` names; a file source is the one entry ``file``."""
    path = m.source or ("/" if m.from_ else ".")
    if m.from_:
        image = _stage_or_image(b, m.from_, "--mount from")
        if posixpath.normpath("/" + path) == "/":
            return image.rootfs, True
        found = files.image_sources(MutableTree.load(b.repo.store, image.rootfs), "/" + path.lstrip("/"))
        ids = None
    else:
        found = [b.context.read(rel, w) for rel in b.context.match(path)]
        ids = (0, 0)
    if len(found) != 1:
        raise DockerfileError(f"--mount source={path}: names {len(found)} paths, not one")
    tree = MutableTree.empty(b.repo.store)
    files.place(tree, [] if found[0].is_dir else [b"file"], found[0], ids, None)
    return tree.write(w), found[0].is_dir


def _make_mounts(b: Build, run_mounts: list[RunMount], sources: dict[int, tuple[bytes, bool]],
                 prepared: Prepared) -> None:
    """Make what each mount needs (build.mounts) and add it to ``prepared``."""
    from ..fs.checkout import CheckoutPolicy, RootOwner
    from ..fs.checkout import checkout as materialise

    policy = CheckoutPolicy(mode=0o755, root_owner=RootOwner.IMAGE)
    for n, m in enumerate(run_mounts):
        if m.kind == "tmpfs":
            prepared.tmpfs.append(m.target + (f":size={m.size}" if m.size is not None else ""))
        elif m.kind == "secret":
            _secret_mount(b, n, m, prepared)
        elif m.kind == "bind":
            tree, is_dir = sources[n]
            os.makedirs(b.repo.root.tmp, exist_ok=True)
            where = tempfile.mkdtemp(dir=b.repo.root.tmp, prefix="build-mount-")
            prepared.scratch.append(where)
            materialise(b.repo.store, tree, where, policy)
            prepared.bind(where if is_dir else os.path.join(where, "file"), m.target, m.readonly)
        else:  # cache
            seed = sources.get(n)
            if seed is not None and not seed[1]:
                raise DockerfileError(f"--mount type=cache source={m.source}: not a directory")
            directory = os.path.join(b.repo.root.cache_dir("build-mounts"),
                                     cache_dir_name(m.id, seed[0] if seed else None))

            def fill(new: str, seed=seed) -> None:
                if seed is not None:
                    os.rmdir(new)
                    materialise(b.repo.store, seed[0], new, policy)

            prepared.bind(open_cache(directory, m, prepared, fill), m.target, m.readonly)


def _secret_mount(b: Build, n: int, m: RunMount, prepared: Prepared) -> None:
    """A secret as a read-only file on a tmpfs (build.mounts.secret_dir) and/or a
    variable; an absent one is skipped unless ``required``, as in BuildKit."""
    value = b.options.secrets.get(m.id)
    if value is None:
        if m.required:
            raise DockerfileError(f"secret {m.id} not found: give it with lg build --secret id={m.id}")
        return
    if m.env:
        prepared.env.append(f"{m.env}={os.fsdecode(value)}")
    if not m.target:
        return
    if not prepared.secrets:
        prepared.secrets = secret_dir(b.repo.root.tmp)
        prepared.scratch.append(prepared.secrets)
    path = os.path.join(prepared.secrets, str(n))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with open(fd, "wb") as f:
        f.write(value)
    own(path, m)
    os.chmod(path, m.mode if m.mode is not None else 0o400)
    prepared.bind(path, m.target, True)


def _stage_or_image(b: Build, ref: str, what: str):
    """The image a ``--from`` names: a stage of this build, else an image of the store."""
    built = b.stage_result(ref)
    if built is not None:
        return b.repo.image(built)
    try:
        return b.repo.image_at(ref)
    except NotFound:
        raise DockerfileError(f"{what}={ref}: no such stage or image") from None


def _command(state: State, rest: str, instr: Instruction) -> tuple[list[str], dict[str, bytes]]:
    """RUN's argv (exec form, or the shell form through SHELL) and any script to mount."""
    exec_form = json_list(rest)
    if exec_form is not None:
        if instr.heredocs:
            raise DockerfileError("RUN here-documents need the shell form")
        return exec_form, {}
    sh = state.config.get("Shell") or DEFAULT_SHELL
    docs = instr.heredocs
    if len(docs) == 1 and heredoc_name(rest.strip()) == docs[0].name:
        if docs[0].body.startswith("#!"):  # a script with its own interpreter, as BuildKit runs it
            interpreter = docs[0].body[2:].split("\n", 1)[0].split()
            return interpreter + [f"/dev/pipes/{docs[0].name}"], {docs[0].name: docs[0].body.encode()}
        return sh + [docs[0].body], {}
    return sh + [rest + "".join(f"\n{h.body}{h.name}" for h in docs)], {}


def copy(b: Build, state: State, instr: Instruction, ex: Expander, step: Step) -> bool:
    """COPY [--from=STAGE|IMAGE] [--chown=USER[:GROUP]] [--chmod=MODE] [--link] SOURCE... DEST
    | COPY [OPTIONS] ["SOURCE"..., "DEST"] | COPY <<EOF DEST

    Context paths (globs; never outside the context or excluded by .dockerignore),
    here-documents, or paths of another stage or image, placed by Docker's rules
    (build.files). Context files become root's unless --chown says otherwise.
    """
    return _put(b, state, instr, ex)


def add(b: Build, state: State, instr: Instruction, ex: Expander, step: Step) -> bool:
    """ADD [--chown=USER[:GROUP]] [--chmod=MODE] [--checksum=sha256:HEX] [--keep-git-dir] [--link]
    SOURCE... DEST

    COPY, and also: a URL is downloaded (--checksum checks it), a git repository
    (``https://host/repo.git#REF:SUBDIR``, ``git@host:repo``, git://, ssh://, file://)
    is checked out into DEST without its .git unless --keep-git-dir (build.gitsource),
    a local tar archive (compressed or not, known by its content) is unpacked into DEST.
    """
    return _put(b, state, instr, ex, add=True)


def _put(b: Build, state: State, instr: Instruction, ex: Expander, add: bool = False) -> bool:
    """COPY and ADD. Sources are read in ``prepare``, since what they hold is part of the
    step's cache key; ``make`` places them only when the cache has no such step.
    --link is accepted and changes nothing: every step is a snapshot of its own.
    --exclude (context sources only) leaves out what its patterns match; --parents
    recreates the context directories of each source under DEST."""
    flags, rest = split_flags(instr.args)
    known = {"from", "chown", "chmod", "link", "exclude", "parents"}
    known |= {"checksum", "keep-git-dir"} if add else set()
    check_flags(instr, flags, known, b.name)
    value = {k: ex.word(v[-1]) for k, v in flags.items()}
    exclude = _excluder([ex.word(v) for v in flags.get("exclude", [])])
    sources, dest = _sources_and_dest(instr, rest, ex)
    mode = files.Chmod(value["chmod"]) if "chmod" in value else None
    text = instr.text(ex.render(instr.args))
    docs = {h.name: h for h in instr.heredocs}
    if "from" in value:
        return _put_from(b, state, value, sources, dest, mode, text)
    if "checksum" in value and not all(_URL.match(s) and not gitsource.parse(s) for s in sources):
        raise DockerfileError("ADD --checksum applies to URLs only")
    # (source, opener of an archive ADD unpacks, the directories --parents keeps above it)
    items: list[tuple[Source, object, list[bytes]]] = []
    parents = "parents" in value and value["parents"].lower() not in ("false", "0")

    def prepare(w) -> str:
        extra = []
        by_commit: set[int] = set()  # git sources: keyed by their commit, not their entries
        for src in sources:
            doc = docs.get(heredoc_name(src) or "")
            if doc is not None:
                body = (ex.render(doc.body) if doc.expand else doc.body).encode()
                items.append((files.heredoc_source(doc.name, body, w), None, []))
                extra.append(hashlib.sha256(body).hexdigest())
            elif add and (_URL.match(src) or gitsource.parse(src)):
                source, key = _remote(b, src, value, w)
                items.append((source, None, []))
                extra.append(key)
                if key.startswith("git "):  # as in BuildKit, the commit is the key: a kept .git differs
                    by_commit.add(id(source))
            else:
                items.extend((exclude(s), opener, _kept_parents(src, s.name) if parents else [])
                             for s, opener in _from_context(b, src, add, w))
        if len(items) > 1 and not files.names_a_dir(dest):
            raise DockerfileError(
                f"when using {instr.keyword} with more than one source file, the destination must be"
                " a directory and end with a /"
            )
        return "\n".join(extra + [digest([s for s, _, _ in items if id(s) not in by_commit])])

    def make(w) -> bytes:
        tree = MutableTree.load(b.repo.store, state.rootfs)
        ids = files.owner(tree, value["chown"]) if "chown" in value else (0, 0)
        target = files.dest_path(state.config.get("WorkingDir"), dest)
        for source, archive, subdir in items:
            where = target + subdir
            if archive is not None:
                files.extract(tree, where, archive, w)
            else:
                files.put_source(tree, dest + ("/" if parents else ""), where, source, ids, mode)
        return b.write(w, state, text, tree.write(w))

    return b.cached_or(state, text, make, prepare=prepare)


def _remote(b: Build, src: str, value: dict, w) -> tuple[Source, str]:
    """ADD of a git repository (build.gitsource) or of a URL: the source and its key."""
    repo = gitsource.parse(src)
    if repo is not None:
        keep = value.get("keep-git-dir", "false").lower() not in ("false", "0")
        return gitsource.fetch(repo, keep, b.repo.root.tmp, w)
    source, fetched = files.fetch(src, w)
    if "checksum" in value and value["checksum"] != "sha256:" + fetched.split()[0]:
        raise DockerfileError(f"{src}: content does not match --checksum={value['checksum']}")
    return source, fetched


def _kept_parents(pattern: str, rel: str) -> list[bytes]:
    """``--parents``: the directories of a matched context path that COPY recreates under
    DEST; a ``/./`` in the pattern drops what comes before it, as BuildKit does."""
    base = posixpath.normpath(pattern.split("/./", 1)[0]).strip("/") if "/./" in pattern else ""
    rel = rel.strip("/")
    if base not in ("", ".") and (rel == base or rel.startswith(base + "/")):
        rel = rel[len(base):].lstrip("/")
    return [os.fsencode(p) for p in posixpath.dirname(rel).split("/") if p and p != "."]


def _excluder(patterns: list[str]):
    """``--exclude=PATTERN`` (repeatable, .dockerignore's syntax): a source without the
    entries below it that a pattern matches, by their path relative to the source."""
    if not patterns:
        return lambda source: source
    from .dockerignore import Ignore, parse

    ignore = Ignore(parse("\n".join(patterns)))

    def kept(source: Source, entry) -> bool:
        if not entry.parts:  # the source itself: a directory stays, a file goes by its name
            return source.is_dir or not ignore.excluded(source.name.rsplit("/", 1)[-1])
        return not ignore.excluded("/".join(p.decode("utf-8", "surrogateescape") for p in entry.parts))

    def keep(source: Source) -> Source:
        return replace(source, entries=[e for e in source.entries if kept(source, e)])

    return keep


def _from_context(b: Build, src: str, add: bool, w) -> list[tuple[Source, object]]:
    """The context's sources a pattern names, each with an opener if ADD unpacks it (an archive)."""
    out: list[tuple[Source, object]] = []
    for rel in b.context.match(src):
        source = b.context.read(rel, w)
        opener = None
        if add and source.entries[0].meta.kind == "f":
            opener = functools.partial(b.context.open_file, rel)
        out.append((source, opener if opener and files.is_archive(opener) else None))
    return out


def _sources_and_dest(instr: Instruction, rest: str, ex: Expander) -> tuple[list[str], str]:
    """SOURCE... DEST, each word expanded on its own (an expansion is one path, spaces and all)."""
    words = [ex.word(w) for w in copy_words(rest)]
    if len(words) < 2:
        raise DockerfileError(f"{instr.keyword} requires at least two arguments: SOURCE... DEST")
    return words[:-1], words[-1]


def _put_from(
    b: Build, state: State, value: dict, sources: list[str], dest: str, mode: files.Chmod | None, text: str
) -> bool:
    """--from=STAGE|IMAGE: entries of another image's snapshot, owners kept unless --chown."""
    image = _stage_or_image(b, value["from"], "--from")

    def make(w) -> bytes:
        origin = MutableTree.load(b.repo.store, image.rootfs)
        found = [s for pattern in sources for s in files.image_sources(origin, pattern)]
        if len(found) > 1 and not files.names_a_dir(dest):
            raise DockerfileError(
                "when copying more than one source, the destination must be a directory and end with a /"
            )
        tree = MutableTree.load(b.repo.store, state.rootfs)
        ids = files.owner(tree, value["chown"]) if "chown" in value else None
        target = files.dest_path(state.config.get("WorkingDir"), dest)
        for source in found:
            files.put_source(tree, dest, target, source, ids, mode)
        return b.write(w, state, text, tree.write(w))

    return b.cached_or(state, text, make, f"from {image.rootfs.hex()}")


def workdir(b: Build, state: State, instr: Instruction, ex: Expander, step: Step) -> bool:
    """WORKDIR PATH

    The directory RUN, CMD, ENTRYPOINT, COPY and ADD start from, relative to the
    previous one; created in the rootfs when missing, as Docker does, and as BuildKit
    does owned by the current USER (the directories it creates, not those there).
    """
    path = ex.word(instr.args)
    if not path:
        raise DockerfileError("WORKDIR requires a path")
    parts = files.dest_path(state.config.get("WorkingDir"), path)
    config = config_changes.apply(state.config, "WORKDIR /" + "/".join(os.fsdecode(p) for p in parts))
    text = instr.text(ex.render(instr.args))

    def make(w) -> bytes:
        tree = MutableTree.load(b.repo.store, state.rootfs)
        rootfs = None
        if tree.resolve_dir(parts, create=False) is None:
            depths = range(1, len(parts) + 1)
            missing = [i for i in depths if tree.resolve_dir(parts[:i], create=False) is None]
            try:
                tree.resolve_dir(parts, create=True)
            except PathError as exc:
                raise DockerfileError(str(exc)) from None
            if state.config.get("User"):
                uid, gid = files.owner(tree, state.config["User"])
                for i in missing:
                    made = tree.resolve_dir(parts[:i], create=False)
                    if made is not None:
                        made.meta = replace(made.meta, uid=uid, gid=gid)
            rootfs = tree.write(w)
        return b.write(w, state, text, rootfs, config)

    return b.cached_or(state, text, make)


# -- variables --------------------------------------------------------------------------


def arg(b: Build, state: State, instr: Instruction, ex: Expander, step: Step) -> bool:
    """ARG NAME[=DEFAULT]...

    Declares build args for the rest of the stage: the --build-arg value, else the
    default, else the value of a global ARG (before the first FROM) of that name.
    """
    for key, default in arg_declarations(instr, ex, b.name):
        fallback = default if default is not None else b.globals.get(key)
        state.args[key] = b.options.build_args.get(key, fallback)
    return config_step(b, state, instr.text(ex.render(instr.args)), state.config)


def env(b: Build, state: State, instr: Instruction, ex: Expander, step: Step) -> bool:
    """ENV KEY=VALUE... | ENV KEY VALUE WITH SPACES

    Sets the image's environment, which the instructions after it also expand.
    """
    text = instr.text(ex.render(instr.args))
    change = "ENV " + _quoted(name_values(instr, ex))
    return config_step(b, state, text, config_changes.apply(state.config, change))


def _quoted(pairs: list[tuple[str, str]]) -> str:
    """KEY=VALUE pairs as lg commit -c's ENV and LABEL take them."""
    return " ".join(f"{shlex.quote(k)}={shlex.quote(v)}" for k, v in pairs)


# -- the image's configuration -------------------------------------------------------------


def cmd(b: Build, state: State, instr: Instruction, ex: Expander, step: Step) -> bool:
    """CMD ["EXECUTABLE", "ARG"...] | CMD ["ARG"...] | CMD COMMAND

    The default command, or the entrypoint's default arguments; the shell form runs
    through SHELL.
    """
    config = config_changes.apply(state.config, "CMD " + json.dumps(_command_form(state, instr)))
    was_set, state.cmd_set = state.cmd_set, True
    return config_step(b, state, instr.text(), config, f"cmd_set={was_set}")


def entrypoint(b: Build, state: State, instr: Instruction, ex: Expander, step: Step) -> bool:
    """ENTRYPOINT ["EXECUTABLE", "ARG"...] | ENTRYPOINT COMMAND

    What the container runs; a new entrypoint does not inherit the base image's Cmd
    (one this Dockerfile set stays).
    """
    config = config_changes.apply(state.config, "ENTRYPOINT " + json.dumps(_command_form(state, instr)))
    if not state.cmd_set:
        config.pop("Cmd", None)
    return config_step(b, state, instr.text(), config, f"cmd_set={state.cmd_set}")


def _command_form(state: State, instr: Instruction) -> list[str]:
    """CMD and ENTRYPOINT's argv: the exec form as written, the shell form through SHELL."""
    command = json_list(instr.args)
    return command if command is not None else (state.config.get("Shell") or DEFAULT_SHELL) + [instr.args]


def shell(b: Build, state: State, instr: Instruction, ex: Expander, step: Step) -> bool:
    """SHELL ["EXECUTABLE", "ARG"...]

    The shell that RUN, CMD and ENTRYPOINT's shell forms run through (default /bin/sh -c).
    """
    argv = json_list(instr.args)
    if not argv:
        raise DockerfileError("SHELL requires the JSON form, e.g. SHELL [\"/bin/bash\", \"-c\"]")
    return config_step(b, state, instr.text(), dict(state.config, Shell=argv))


def label(b: Build, state: State, instr: Instruction, ex: Expander, step: Step) -> bool:
    """LABEL KEY=VALUE... | LABEL KEY VALUE WITH SPACES"""
    text = instr.text(ex.render(instr.args))
    change = "LABEL " + _quoted(name_values(instr, ex))
    return config_step(b, state, text, config_changes.apply(state.config, change))


def maintainer(b: Build, state: State, instr: Instruction, ex: Expander, step: Step) -> bool:
    """MAINTAINER NAME (deprecated): the label maintainer=NAME, as Docker sets it."""
    config = config_changes.apply(state.config, f"LABEL maintainer={shlex.quote(instr.args)}")
    return config_step(b, state, instr.text(), config)


def user(b: Build, state: State, instr: Instruction, ex: Expander, step: Step) -> bool:
    """USER NAME[:GROUP] | USER UID[:GID]"""
    text = instr.text(ex.render(instr.args))
    return config_step(b, state, text, config_changes.apply(state.config, f"USER {ex.word(instr.args)}"))


def expose(b: Build, state: State, instr: Instruction, ex: Expander, step: Step) -> bool:
    """EXPOSE PORT[/PROTOCOL]..."""
    text = instr.text(ex.render(instr.args))
    change = "EXPOSE " + " ".join(ex.words(instr.args))
    return config_step(b, state, text, config_changes.apply(state.config, change))


def volume(b: Build, state: State, instr: Instruction, ex: Expander, step: Step) -> bool:
    """VOLUME PATH... | VOLUME ["PATH"...]"""
    text = instr.text(ex.render(instr.args))
    paths = json_list(instr.args)
    words = [ex.word(p) for p in paths] if paths is not None else ex.words(instr.args)
    change = "VOLUME " + json.dumps(words)
    return config_step(b, state, text, config_changes.apply(state.config, change))


def stopsignal(b: Build, state: State, instr: Instruction, ex: Expander, step: Step) -> bool:
    """STOPSIGNAL SIGNAL"""
    text = instr.text(ex.render(instr.args))
    change = f"STOPSIGNAL {ex.word(instr.args)}"
    return config_step(b, state, text, config_changes.apply(state.config, change))


def healthcheck(b: Build, state: State, instr: Instruction, ex: Expander, step: Step) -> bool:
    """HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D] [--start-interval=D] [--retries=N]
    CMD COMMAND | HEALTHCHECK NONE

    D is a Go duration (30s, 1m30s); NONE turns off a check the base image has.
    """
    flags, rest = split_flags(instr.args)
    check_flags(instr, flags, {"interval", "timeout", "start-period", "start-interval", "retries"}, b.name)
    kind, _, command = rest.partition(" ")
    if kind.upper() == "NONE" and not command.strip():
        if flags:
            raise DockerfileError("HEALTHCHECK NONE takes no options")
        check: dict = {"Test": ["NONE"]}
    else:
        if kind.upper() != "CMD" or not command.strip():
            raise DockerfileError("HEALTHCHECK takes CMD COMMAND or NONE")
        exec_form = json_list(command)
        check = {"Test": ["CMD"] + exec_form if exec_form is not None else ["CMD-SHELL", command.strip()]}
        durations = (
            ("interval", "Interval"), ("timeout", "Timeout"),
            ("start-period", "StartPeriod"), ("start-interval", "StartInterval"),
        )
        for flag, key in durations:
            if flag in flags:
                check[key] = duration_ns(flags[flag][-1])
        if "retries" in flags:
            if not flags["retries"][-1].isdigit():
                raise DockerfileError(f"HEALTHCHECK --retries must be a number, got {flags['retries'][-1]!r}")
            check["Retries"] = int(flags["retries"][-1])
    return config_step(b, state, instr.text(), dict(state.config, Healthcheck=check))


def duration_ns(text: str) -> int:
    """A Go duration (``30s``, ``1m30s``, ``500ms``) in nanoseconds, as HEALTHCHECK takes them."""
    if not text or _DURATION.sub("", text):
        raise DockerfileError(f"invalid duration {text!r}: use e.g. 30s, 1m30s or 500ms")
    return int(sum(float(n) * _NS[unit] for n, unit in _DURATION.findall(text)))


def onbuild(b: Build, state: State, instr: Instruction, ex: Expander, step: Step) -> bool:
    """ONBUILD INSTRUCTION

    Stored in the image (OnBuild), run by a build FROM it, not inherited further.
    """
    trigger = parse(instr.args, "ONBUILD").instructions
    if len(trigger) != 1 or trigger[0].keyword in ("ONBUILD", "FROM", "MAINTAINER"):
        raise DockerfileError("ONBUILD takes one instruction other than ONBUILD, FROM or MAINTAINER")
    triggers = list(state.config.get("OnBuild") or []) + [trigger[0].text()]
    return config_step(b, state, instr.text(), dict(state.config, OnBuild=triggers))


STEPS: dict[str, StepFunction] = {
    "ADD": add,
    "ARG": arg,
    "CMD": cmd,
    "COPY": copy,
    "ENTRYPOINT": entrypoint,
    "ENV": env,
    "EXPOSE": expose,
    "HEALTHCHECK": healthcheck,
    "LABEL": label,
    "MAINTAINER": maintainer,
    "ONBUILD": onbuild,
    "RUN": run,
    "SHELL": shell,
    "STOPSIGNAL": stopsignal,
    "USER": user,
    "VOLUME": volume,
    "WORKDIR": workdir,
}
