"""lg build: a Dockerfile run step by step, every instruction a commit.

Each instruction of the built stages becomes one commit on top of the previous one
whose message is the instruction as written (variables expanded where Docker expands
them, here-documents included), so ``lg log`` of the result reads like the
Dockerfile; config-only instructions are commits with the parent's rootfs. FROM an
image starts from that image's commit; ``FROM scratch`` is a root commit with an
empty rootfs. Only the target stage and the stages it needs are built (as BuildKit
does), and tags move only when every step succeeded.

Steps are reused through build.cache. RUN steps run in containers (build.container) on the
default bridge network unless ``--network`` says otherwise, as with Docker: most
RUN steps fetch packages, which outbound NAT allows, while the step stays isolated
from the host's own services. Progress is a stream of events for the CLI to
render; nothing here prints.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shlex
import time
from dataclasses import dataclass, field
from typing import Callable

from ..errors import LgError, NotFound, UsageError
from ..porcelain.images import force_tag
from ..porcelain.repo import Repo, store_lock
from ..porcelain.runopts import RunOptions
from ..store import names
from ..store.image import write_image_tree
from ..store.mutable import MutableTree, PathError
from . import cache, container, files
from . import changes as config_changes
from .context import Context, Source, digest
from .dockerfile import (
    Dockerfile,
    DockerfileError,
    Expander,
    Instruction,
    heredoc_name,
    json_list,
    parse,
    split_flags,
)
from .dockerignore import Ignore

NETWORKS = ("host", "none", "bridge")
DEFAULT_SHELL = ["/bin/sh", "-c"]
# Docker passes these to RUN when given, but keeps them out of the cache and history.
PROXY_ARGS = frozenset(k for name in ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY") for k in (name, name.lower()))
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


@dataclass
class BuildOptions:
    dockerfile: str | None = None  # default: CONTEXT/Dockerfile, else CONTEXT/Containerfile
    dockerfile_text: str | None = None  # the Dockerfile itself (lg build -f -)
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    network: str = "bridge"


@dataclass(frozen=True)
class BuildResult:
    id: str
    tags: list[str]
    steps: int
    cached: int


# -- progress events ---------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    number: int  # 1, 2, ... across the whole build
    label: str  # "[2/5]", or "[builder 2/5]" in a multi-stage build
    text: str  # the instruction's first line


@dataclass(frozen=True)
class StepStarted:
    step: Step


@dataclass(frozen=True)
class StepOutput:
    step: Step
    stream: str  # "stdout" or "stderr"
    line: bytes


@dataclass(frozen=True)
class StepCached:
    step: Step


@dataclass(frozen=True)
class StepDone:
    step: Step
    seconds: float


@dataclass(frozen=True)
class StepFailed:
    step: Step
    error: str


@dataclass(frozen=True)
class BuildWarning:
    text: str


Progress = Callable[[object], None]


class BuildError(LgError):
    """A step that failed; a failed RUN exits with the command's own code."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def build(repo: Repo, context: str, options: BuildOptions, progress: Progress | None = None) -> BuildResult:
    """Build the Dockerfile in ``context``; returns the final image and the tags moved."""
    if options.network not in NETWORKS:
        raise UsageError(f"unknown network {options.network!r}: use {', '.join(NETWORKS)}")
    if not os.path.isdir(context):
        raise NotFound(f"build context {context} is not a directory")
    tags = [names.parse(t) for t in options.tags]
    path = options.dockerfile
    if options.dockerfile_text is not None:
        text, label = options.dockerfile_text, "Dockerfile"
    else:
        if path is None:
            path = next((p for p in (os.path.join(context, n) for n in ("Dockerfile", "Containerfile")) if os.path.exists(p)), os.path.join(context, "Dockerfile"))
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise NotFound(f"cannot read {path}: {exc.strerror}") from None
        label = os.path.basename(path)
    builder = _Builder(repo, context, options, parse(text, label), label, Ignore.for_context(context, path), progress or (lambda event: None))
    with store_lock(repo):
        final = builder.run()
    for image in tags:
        if repo.store.ref(image.ref) != final:
            force_tag(repo, image, final, f"build: {context}")
    return BuildResult(final.hex(), [str(t) for t in tags], builder.number, builder.cached)


def platform_args() -> dict[str, str]:
    """BuildKit's automatic platform args (global scope: FROM sees them, a stage must declare them)."""
    machine = platform.machine().lower()
    arch, variant = {"x86_64": ("amd64", ""), "amd64": ("amd64", ""), "aarch64": ("arm64", ""), "arm64": ("arm64", ""), "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"), "i686": ("386", ""), "i386": ("386", "")}.get(machine, (machine, ""))
    plat = f"linux/{arch}" + (f"/{variant}" if variant else "")
    out = {}
    for prefix in ("TARGET", "BUILD"):
        out.update({f"{prefix}PLATFORM": plat, f"{prefix}OS": "linux", f"{prefix}ARCH": arch, f"{prefix}VARIANT": variant})
    return out


def duration_ns(text: str) -> int:
    """A Go duration (``30s``, ``1m30s``, ``500ms``) in nanoseconds, as HEALTHCHECK takes them."""
    if not text or _DURATION.sub("", text):
        raise DockerfileError(f"invalid duration {text!r}: use e.g. 30s, 1m30s or 500ms")
    return int(sum(float(n) * _NS[unit] for n, unit in _DURATION.findall(text)))


@dataclass
class _Stage:
    index: int
    name: str | None
    base: str
    line: int
    body: list[Instruction] = field(default_factory=list)
    needs: set[int] = field(default_factory=set)


@dataclass
class _State:
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


class _Builder:
    def __init__(self, repo: Repo, context: str, options: BuildOptions, dockerfile: Dockerfile, name: str, ignore: Ignore, emit: Progress):
        self.repo = repo
        self.store = repo.store
        self.context_dir = context
        self.options = options
        self.df = dockerfile
        self.name = name
        self.ignore = ignore
        self.emit = emit
        self.number = 0
        self.cached = 0
        self.declared_args: set[str] = set()
        self.globals: dict[str, str | None] = dict(platform_args())
        self.stages: list[_Stage] = []
        self.results: dict[int, bytes] = {}
        self._context: Context | None = None
        self._author = None

    # -- planning ------------------------------------------------------------------

    def _expander(self, env) -> Expander:
        return Expander({k: v for k, v in env.items() if v is not None}, self.df.escape)

    def _declared(self, instr: Instruction, env) -> list[tuple[str, str | None]]:
        """(name, default) pairs of an ARG line; defaults expanded with ``env``."""
        out = []
        ex = self._expander(env)
        for word in ex.raw_words(instr.args):
            key, eq, value = word.partition("=")
            if not key:
                raise DockerfileError(f"{self.name}:{instr.line}: ARG names can not be blank")
            out.append((key, ex.word(value) if eq else None))
        if not out:
            raise DockerfileError(f"{self.name}:{instr.line}: ARG requires at least one argument")
        return out

    def _plan(self) -> list[_Stage]:
        instructions = self.df.instructions
        self.declared_args = {w.partition("=")[0] for instr in instructions if instr.keyword == "ARG" for w in Expander({}, self.df.escape).raw_words(instr.args)}
        i = 0
        while i < len(instructions) and instructions[i].keyword == "ARG":
            for key, default in self._declared(instructions[i], self.globals):
                self.globals[key] = self.options.build_args.get(key, default)
            i += 1
        if i == len(instructions) or instructions[i].keyword != "FROM":
            line = instructions[i].line if i < len(instructions) else 1
            raise DockerfileError(f"{self.name}:{line}: the first instruction must be FROM (only ARG may come before it)")
        by_name: dict[str, int] = {}
        for instr in instructions[i:]:
            if instr.keyword == "FROM":
                stage = self._from_line(instr, len(self.stages))
                if stage.base.lower() in by_name:
                    stage.needs.add(by_name[stage.base.lower()])
                if stage.name:
                    by_name[stage.name] = stage.index
                self.stages.append(stage)
                continue
            stage = self.stages[-1]
            stage.body.append(instr)
            if instr.keyword in ("COPY", "ADD"):
                source = split_flags(instr.args)[0].get("from")
                if source:
                    ref = self._expander(self.globals).word(source[-1]).lower()
                    if ref in by_name:
                        stage.needs.add(by_name[ref])
                    elif ref.isdigit() and int(ref) < stage.index:
                        stage.needs.add(int(ref))
        target = self.stages[-1]
        if self.options.target:
            wanted = self.options.target.lower()
            if wanted not in by_name:
                raise UsageError(f"target stage {self.options.target!r} could not be found in {self.name}")
            target = self.stages[by_name[wanted]]
        needed, todo = set(), [target.index]
        while todo:
            index = todo.pop()
            if index not in needed:
                needed.add(index)
                todo += self.stages[index].needs
        return [s for s in self.stages if s.index in needed]

    def _from_line(self, instr: Instruction, index: int) -> _Stage:
        flags, rest = split_flags(instr.args)
        self._check_flags(instr, flags, {"platform"})
        ex = self._expander(self.globals)
        for value in flags.get("platform", []):
            if ex.word(value) not in (self.globals["TARGETPLATFORM"], "linux"):
                raise DockerfileError(f"{self.name}:{instr.line}: cannot build for platform {ex.word(value)}: lg runs {self.globals['TARGETPLATFORM']} only")
        words = ex.words(rest)
        name = None
        if len(words) == 3 and words[1].lower() == "as":
            name = words[2].lower()
            if not _STAGE_NAME.match(name):
                raise DockerfileError(f"{self.name}:{instr.line}: invalid stage name {words[2]!r}")
        elif len(words) != 1:
            raise DockerfileError(f"{self.name}:{instr.line}: FROM requires either one or three arguments")
        return _Stage(index, name, words[0], instr.line)

    def _check_flags(self, instr: Instruction, flags: dict, allowed: set[str]) -> None:
        for flag in flags:
            if flag not in allowed:
                raise DockerfileError(f"{self.name}:{instr.line}: {instr.keyword} --{flag} is not supported")

    # -- running -------------------------------------------------------------------

    def run(self) -> bytes:
        stages = self._plan()
        try:
            for stage in stages:
                self.results[stage.index] = self._stage(stage, len(self.stages) > 1)
        finally:
            if self._context is not None:
                self._context.close()
        unused = sorted(set(self.options.build_args) - self.declared_args - PROXY_ARGS)
        if unused:
            self.emit(BuildWarning(f"build args not consumed by any ARG: {', '.join(unused)}"))
        return self.results[stages[-1].index]

    def _stage(self, stage: _Stage, multi: bool) -> bytes:
        state = _State(stage.name or f"stage-{stage.index}" if multi else "", 1 + len(stage.body))
        triggers: list[Instruction] = []

        def start(step: Step) -> bool:
            cached = self._from(state, stage)
            found = state.config.pop("OnBuild", None) or []
            for text in found:
                triggers.extend(parse(text, "ONBUILD trigger").instructions)
            state.total += len(triggers)
            return cached

        self._step(state, f"FROM {stage.base}", stage.line, start)
        for instr in triggers + stage.body:
            self._step(state, instr.text().split("\n")[0], instr.line, lambda step, instr=instr: self._instruction(state, instr, step))
        return state.commit

    def _step(self, state: _State, text: str, line: int, run: Callable[[Step], bool]) -> None:
        state.done += 1
        self.number += 1
        step = Step(self.number, f"[{state.label + ' ' if state.label else ''}{state.done}/{state.total}]", text)
        self.emit(StepStarted(step))
        started = time.monotonic()
        try:
            cached = run(step)
        except LgError as exc:
            self.emit(StepFailed(step, str(exc)))
            raise BuildError(f"{step.label} {text} ({self.name}:{line}): {exc}", exc.exit_code) from None
        if cached:
            self.cached += 1
            self.emit(StepCached(step))
        else:
            self.emit(StepDone(step, time.monotonic() - started))

    @property
    def author(self):
        if self._author is None:
            self._author = self.store.default_author()
        return self._author

    def _advance(self, state: _State, commit: bytes) -> None:
        image = self.repo.image(commit)
        state.commit, state.config, state.rootfs = commit, image.config, image.rootfs

    def _write(self, writer, state: _State, text: str, rootfs: bytes | None = None, config: dict | None = None) -> bytes:
        tree = write_image_tree(writer, state.config if config is None else config, rootfs or state.rootfs)
        return writer.commit(tree, [state.commit] if state.commit else [], self.author, self.author, text)

    def _cached_or(self, state: _State, text: str, make: Callable[[object], bytes], extra: str = "", prepare: Callable[[object], str] | None = None) -> bool:
        """Reuse the step's commit from the cache, else ``make`` it (and remember it).

        Both get the step's one object writer (one pack per step): ``prepare`` (COPY
        reading its sources) returns what else the key depends on, ``make`` writes the
        commit. The key also covers the config as it stands (FROM drops OnBuild).
        """
        config = hashlib.sha256(json.dumps(state.config, sort_keys=True).encode()).hexdigest()
        with self.store.writer() as w:
            if prepare is not None:
                extra = prepare(w)
            step_key = cache.key(state.commit, text, f"{extra}\nconfig {config}")
            hit = None if self.options.no_cache else cache.lookup(self.repo, step_key)
            commit = hit or make(w)
        if hit is None:
            cache.remember(self.repo, step_key, commit)
        self._advance(state, commit)
        return hit is not None

    def _config_step(self, state: _State, text: str, config: dict, extra: str = "") -> bool:
        return self._cached_or(state, text, lambda w: self._write(w, state, text, config=config), extra)

    def _from(self, state: _State, stage: _Stage) -> bool:
        if stage.base == "scratch":
            def make(w) -> bytes:
                return self._write(w, state, "FROM scratch", MutableTree.empty(self.store).write(w), {})

            return self._cached_or(state, "FROM scratch", make)
        earlier = next((s for s in self.stages[: stage.index] if s.name == stage.base.lower()), None)
        if earlier is not None:
            self._advance(state, self.results[earlier.index])
            return False
        try:
            self._advance(state, self.repo.resolve(stage.base))
        except NotFound:
            raise DockerfileError(f"no such image {stage.base}: lg build uses local images (lg import or lg commit one first)") from None
        return False

    # -- instructions ----------------------------------------------------------------

    def _instruction(self, state: _State, instr: Instruction, step: Step) -> bool:
        kw = instr.keyword
        ex = self._expander(state.env())
        if kw == "RUN":
            return self._run(state, instr, step)
        if kw in ("COPY", "ADD"):
            return self._copy(state, instr, ex)
        if kw == "WORKDIR":
            return self._workdir(state, instr, ex)
        if kw == "ARG":
            for key, default in self._declared(instr, state.env()):
                state.args[key] = self.options.build_args.get(key, default if default is not None else self.globals.get(key))
            return self._config_step(state, instr.text(ex.render(instr.args)), state.config)
        if kw in ("CMD", "ENTRYPOINT"):
            command = json_list(instr.args)
            if command is None:
                command = (state.config.get("Shell") or DEFAULT_SHELL) + [instr.args]
            config = config_changes.apply(state.config, f"{kw} {json.dumps(command)}")
            if kw == "ENTRYPOINT" and not state.cmd_set:
                config.pop("Cmd", None)  # a new entrypoint does not inherit the base image's Cmd
            cmd_set = state.cmd_set
            state.cmd_set = state.cmd_set or kw == "CMD"
            return self._config_step(state, instr.text(), config, f"cmd_set={cmd_set}")
        if kw == "SHELL":
            shell = json_list(instr.args)
            if not shell:
                raise DockerfileError("SHELL requires the JSON form, e.g. SHELL [\"/bin/bash\", \"-c\"]")
            return self._config_step(state, instr.text(), dict(state.config, Shell=shell))
        if kw == "HEALTHCHECK":
            return self._config_step(state, instr.text(), dict(state.config, Healthcheck=self._healthcheck(instr)))
        if kw == "ONBUILD":
            trigger = parse(instr.args, "ONBUILD").instructions
            if len(trigger) != 1 or trigger[0].keyword in ("ONBUILD", "FROM", "MAINTAINER"):
                raise DockerfileError("ONBUILD takes one instruction other than ONBUILD, FROM or MAINTAINER")
            triggers = list(state.config.get("OnBuild") or []) + [trigger[0].text()]
            return self._config_step(state, instr.text(), dict(state.config, OnBuild=triggers))
        if kw == "MAINTAINER":
            config = config_changes.apply(state.config, f"LABEL maintainer={shlex.quote(instr.args)}")
            return self._config_step(state, instr.text(), config)
        return self._config_step(state, instr.text(ex.render(instr.args)), config_changes.apply(state.config, self._change(instr, ex)))

    def _change(self, instr: Instruction, ex: Expander) -> str:
        """ENV, LABEL, USER, EXPOSE, VOLUME, STOPSIGNAL with variables expanded, as lg commit -c takes them."""
        kw = instr.keyword
        if kw in ("ENV", "LABEL"):
            return f"{kw} " + " ".join(f"{shlex.quote(k)}={shlex.quote(v)}" for k, v in self._pairs(instr, ex))
        if kw == "VOLUME":
            paths = json_list(instr.args)
            return "VOLUME " + json.dumps([ex.word(p) for p in paths] if paths is not None else ex.words(instr.args))
        if kw == "EXPOSE":
            return "EXPOSE " + " ".join(ex.words(instr.args))
        return f"{kw} {ex.word(instr.args)}"

    def _pairs(self, instr: Instruction, ex: Expander) -> list[tuple[str, str]]:
        """KEY=VALUE words (Docker's parseNameVal), or the legacy ``KEY VALUE WITH SPACES``."""
        words = ex.raw_words(instr.args)
        if not words:
            raise DockerfileError(f"{instr.keyword} requires at least one argument")
        if "=" not in words[0]:
            rest = instr.args.strip()[len(words[0]):].strip()
            if not rest:
                raise DockerfileError(f"{instr.keyword} {words[0]} needs a value (KEY=VALUE or KEY VALUE)")
            return [(words[0], ex.word(rest))]
        out = []
        for word in words:
            key, eq, value = word.partition("=")
            if not eq or not key:
                raise DockerfileError(f"{instr.keyword} expects KEY=VALUE, got {word!r}")
            out.append((ex.word(key), ex.word(value)))
        return out

    def _healthcheck(self, instr: Instruction) -> dict:
        flags, rest = split_flags(instr.args)
        self._check_flags(instr, flags, {"interval", "timeout", "start-period", "start-interval", "retries"})
        kind, _, command = rest.partition(" ")
        if kind.upper() == "NONE" and not command.strip():
            if flags:
                raise DockerfileError("HEALTHCHECK NONE takes no options")
            return {"Test": ["NONE"]}
        if kind.upper() != "CMD" or not command.strip():
            raise DockerfileError("HEALTHCHECK takes CMD COMMAND or NONE")
        exec_form = json_list(command)
        check: dict = {"Test": ["CMD"] + exec_form if exec_form is not None else ["CMD-SHELL", command.strip()]}
        for flag, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
            if flag in flags:
                check[key] = duration_ns(flags[flag][-1])
        if "retries" in flags:
            if not flags["retries"][-1].isdigit():
                raise DockerfileError(f"HEALTHCHECK --retries must be a number, got {flags['retries'][-1]!r}")
            check["Retries"] = int(flags["retries"][-1])
        return check

    def _workdir(self, state: _State, instr: Instruction, ex: Expander) -> bool:
        path = ex.word(instr.args)
        if not path:
            raise DockerfileError("WORKDIR requires a path")
        parts = files.dest_path(state.config.get("WorkingDir"), path)
        config = config_changes.apply(state.config, "WORKDIR /" + "/".join(os.fsdecode(p) for p in parts))
        text = instr.text(ex.render(instr.args))

        def make(w) -> bytes:
            tree = MutableTree.load(self.store, state.rootfs)
            rootfs = None
            if tree.resolve_dir(parts, create=False) is None:  # Docker creates a missing WORKDIR
                try:
                    tree.resolve_dir(parts, create=True)
                except PathError as exc:
                    raise DockerfileError(str(exc)) from None
                rootfs = tree.write(w)
            return self._write(w, state, text, rootfs, config)

        return self._cached_or(state, text, make)

    def _run(self, state: _State, instr: Instruction, step: Step) -> bool:
        flags, rest = split_flags(instr.args)
        self._check_flags(instr, flags, {"network"})
        network = (flags.get("network") or ["default"])[-1]
        network = self.options.network if network == "default" else network
        if network not in NETWORKS:
            raise DockerfileError(f"RUN --network={network}: use default, {', '.join(NETWORKS)}")
        argv, scripts = self._command(state, rest, instr)
        env_names = {item.partition("=")[0] for item in state.config.get("Env") or []}
        arg_env = {k: v for k, v in state.args.items() if v is not None and k not in env_names}
        for key in PROXY_ARGS & self.options.build_args.keys():  # given, they reach RUN undeclared
            arg_env.setdefault(key, self.options.build_args[key])
        extra = "\n".join(f"{k}={v}" for k, v in sorted(arg_env.items()) if k not in PROXY_ARGS)
        text = instr.text()

        def make(w) -> bytes:
            options = RunOptions(env=[f"{k}={v}" for k, v in arg_env.items()], network=network, entrypoint="", command=argv)
            code, rootfs = container.run(self.repo, state.commit, options, scripts, lambda stream, line: self.emit(StepOutput(step, stream, line)), w)
            if code:
                shown = " ".join(argv).replace("\n", "\\n")
                shown = shown if len(shown) <= 200 else shown[:197] + "..."
                raise BuildError(f'process "{shown}" did not complete successfully: exit code: {code}', code)
            return self._write(w, state, text, rootfs)

        return self._cached_or(state, text, make, extra)

    def _command(self, state: _State, rest: str, instr: Instruction) -> tuple[list[str], dict[str, bytes]]:
        """RUN's argv (exec form, or the shell form through SHELL) and any script to mount."""
        exec_form = json_list(rest)
        if exec_form is not None:
            if instr.heredocs:
                raise DockerfileError("RUN here-documents need the shell form")
            return exec_form, {}
        shell = state.config.get("Shell") or DEFAULT_SHELL
        docs = instr.heredocs
        if len(docs) == 1 and heredoc_name(rest.strip()) == docs[0].name:
            if docs[0].body.startswith("#!"):  # a script with its own interpreter, as BuildKit runs it
                interpreter = docs[0].body[2:].split("\n", 1)[0].split()
                return interpreter + [f"/dev/pipes/{docs[0].name}"], {docs[0].name: docs[0].body.encode()}
            return shell + [docs[0].body], {}
        return shell + [rest + "".join(f"\n{h.body}{h.name}" for h in docs)], {}

    def _copy(self, state: _State, instr: Instruction, ex: Expander) -> bool:
        add = instr.keyword == "ADD"
        flags, rest = split_flags(instr.args)
        self._check_flags(instr, flags, {"from", "chown", "chmod", "link"} | ({"checksum"} if add else set()))
        value = {k: ex.word(v[-1]) for k, v in flags.items()}
        exec_form = json_list(rest)
        words = [ex.word(w) for w in exec_form] if exec_form is not None else ex.words(rest)
        if len(words) < 2:
            raise DockerfileError(f"{instr.keyword} requires at least two arguments: SOURCE... DEST")
        sources, dest = words[:-1], words[-1]
        mode = files.parse_chmod(value["chmod"]) if "chmod" in value else None
        text = instr.text(ex.render(instr.args))
        docs = {h.name: h for h in instr.heredocs}
        if "from" in value:
            return self._copy_from(state, value, sources, dest, mode, text)
        if "checksum" in value and not all(re.match(r"^https?://", s) for s in sources):
            raise DockerfileError("ADD --checksum applies to URLs only")
        items: list[tuple[Source, object]] = []  # (source, opener of an archive ADD unpacks)

        def prepare(w) -> str:
            extra = []
            for src in sources:
                doc = docs.get(heredoc_name(src) or "")
                if doc is not None:
                    body = (ex.render(doc.body) if doc.expand else doc.body).encode()
                    items.append((files.heredoc_source(doc.name, body, w), None))
                    extra.append(hashlib.sha256(body).hexdigest())
                elif add and re.match(r"^https?://", src):
                    source, fetched = files.fetch(src, w)
                    if "checksum" in value and value["checksum"] != "sha256:" + fetched.split()[0]:
                        raise DockerfileError(f"{src}: content does not match --checksum={value['checksum']}")
                    items.append((source, None))
                    extra.append(fetched)
                else:
                    for rel in self.context.match(src):
                        source = self.context.read(rel, w)
                        opener = (lambda rel=rel: self.context.open_file(rel)) if add and source.entries[0].meta.kind == "f" else None
                        items.append((source, opener if opener and files.is_archive(opener) else None))
            if len(items) > 1 and not files.names_a_dir(dest):
                raise DockerfileError(f"when using {instr.keyword} with more than one source file, the destination must be a directory and end with a /")
            return "\n".join(extra + [digest([s for s, _ in items])])

        def make(w) -> bytes:
            tree = MutableTree.load(self.store, state.rootfs)
            ids = files.owner(tree, value["chown"]) if "chown" in value else (0, 0)
            target = files.dest_path(state.config.get("WorkingDir"), dest)
            for source, archive in items:
                if archive is not None:
                    files.extract(tree, target, archive, w)
                else:
                    files.put_source(tree, dest, target, source, ids, mode)
            return self._write(w, state, text, tree.write(w))

        return self._cached_or(state, text, make, prepare=prepare)

    def _copy_from(self, state: _State, value: dict, sources: list[str], dest: str, mode: int | None, text: str) -> bool:
        """COPY --from=STAGE|IMAGE: entries of another image's snapshot, owners kept unless --chown."""
        ref = value["from"]
        stage = next((s for s in self.stages if s.name == ref.lower() or str(s.index) == ref), None)
        if stage is not None and stage.index in self.results:
            image = self.repo.image(self.results[stage.index])
        else:
            try:
                image = self.repo.image_at(ref)
            except NotFound:
                raise DockerfileError(f"--from={ref}: no such stage or image") from None

        def make(w) -> bytes:
            origin = MutableTree.load(self.store, image.rootfs)
            found = [s for pattern in sources for s in files.image_sources(origin, pattern)]
            if len(found) > 1 and not files.names_a_dir(dest):
                raise DockerfileError("when copying more than one source, the destination must be a directory and end with a /")
            tree = MutableTree.load(self.store, state.rootfs)
            ids = files.owner(tree, value["chown"]) if "chown" in value else None
            target = files.dest_path(state.config.get("WorkingDir"), dest)
            for source in found:
                files.put_source(tree, dest, target, source, ids, mode)
            return self._write(w, state, text, tree.write(w))

        return self._cached_or(state, text, make, f"from {image.rootfs.hex()}")

    @property
    def context(self) -> Context:
        """The build context, opened on the first COPY or ADD that reads it."""
        if self._context is None:
            from ..fs.statcache import StatCache

            self._context = Context(self.context_dir, self.ignore, StatCache.for_directory(self.repo.root.cache_dir("build-stat"), self.context_dir))
        return self._context
