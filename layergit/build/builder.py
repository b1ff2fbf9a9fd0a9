"""lg build: a Dockerfile run step by step, every instruction a commit.

Each instruction of the built stages becomes one commit on top of the previous one
whose message is the instruction as written (variables expanded where Docker expands
them, here-documents included), so ``lg log`` of the result reads like the
Dockerfile; config-only instructions are commits with the parent's rootfs. FROM an
image starts from that image's commit; ``FROM scratch`` is a root commit with an
empty rootfs. Only the target stage and the stages it needs are built (as BuildKit
does), and tags move only when every step succeeded.

build.plan decides which stages run, before the store is locked; this module runs
them, one step per instruction: FROM here, every other instruction through its
function in steps.STEPS. Steps are reused through
build.cache. RUN steps run in containers (build.container) on the default bridge
network unless ``--network`` says otherwise, as with Docker: most RUN steps fetch
packages, which outbound NAT allows, while the step stays isolated from the host's
own services. Progress is a stream of events (build.events) for the CLI to render;
nothing here prints.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from dataclasses import dataclass
from typing import Callable

from ..errors import LgError, NotFound, UsageError
from ..porcelain.images import force_tag
from ..porcelain.repo import Repo, store_lock
from ..store import names
from ..store.image import write_image_tree
from ..store.mutable import MutableTree
from ..store.rawobj import Signature
from . import cache
from .context import Context
from .dockerfile import DockerfileError, Expander, Instruction, parse
from .dockerignore import Ignore
from .events import BuildError, BuildWarning, Progress, Step, StepCached, StepDone, StepFailed, StepStarted
from .options import NETWORKS, BuildOptions
from .plan import Plan, Stage, plan
from .steps import PROXY_ARGS, STEPS, State


@dataclass(frozen=True)
class BuildResult:
    id: str
    tags: list[str]
    steps: int
    cached: int


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
            candidates = (os.path.join(context, n) for n in ("Dockerfile", "Containerfile"))
            path = next((p for p in candidates if os.path.exists(p)), os.path.join(context, "Dockerfile"))
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise NotFound(f"cannot read {path}: {exc.strerror}") from None
        label = os.path.basename(path)
    planned = plan(parse(text, label), label, options.build_args, options.target)
    ignore = Ignore.for_context(context, path)
    builder = _Builder(repo, context, options, planned, label, ignore, progress or (lambda event: None))
    with store_lock(repo):
        final = builder.run()
    for image in tags:
        if repo.store.ref(image.ref) != final:
            force_tag(repo, image, final, f"build: {context}")
    return BuildResult(final.hex(), [str(t) for t in tags], builder.number, builder.cached)


class _Builder:
    """One build: runs a plan's stages step by step (steps.Build is what a step may use of it)."""

    def __init__(
        self, repo: Repo, context: str, options: BuildOptions, planned: Plan, name: str, ignore: Ignore,
        emit: Progress,
    ):
        self.repo = repo
        self.store = repo.store
        self.context_dir = context
        self.options = options
        self.plan = planned
        self.globals = planned.globals
        self.name = name
        self.ignore = ignore
        self.emit = emit
        self.number = 0
        self.cached = 0
        self.results: dict[int, bytes] = {}
        self._context: Context | None = None
        self._author: Signature | None = None

    def _expander(self, env) -> Expander:
        return Expander({k: v for k, v in env.items() if v is not None}, self.plan.escape)

    # -- running -------------------------------------------------------------------

    def run(self) -> bytes:
        try:
            for stage in self.plan.order:
                self.results[stage.index] = self._stage(stage, len(self.plan.stages) > 1)
        finally:
            if self._context is not None:
                self._context.close()
        unused = sorted(set(self.options.build_args) - self.plan.declared - PROXY_ARGS)
        if unused:
            self.emit(BuildWarning(f"build args not consumed by any ARG: {', '.join(unused)}"))
        return self.results[self.plan.order[-1].index]

    def _stage(self, stage: Stage, multi: bool) -> bytes:
        state = State(stage.name or f"stage-{stage.index}" if multi else "", 1 + len(stage.body))
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
            run = functools.partial(self._instruction, state, instr)
            self._step(state, instr.text().split("\n")[0], instr.line, run)
        assert state.commit is not None  # FROM made or found one
        return state.commit

    def _step(self, state: State, text: str, line: int, run: Callable[[Step], bool]) -> None:
        state.done += 1
        self.number += 1
        where = f"{state.label} " if state.label else ""
        step = Step(self.number, f"[{where}{state.done}/{state.total}]", text)
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

    def _from(self, state: State, stage: Stage) -> bool:
        if stage.base == "scratch":
            def make(w) -> bytes:
                return self.write(w, state, "FROM scratch", MutableTree.empty(self.store).write(w), {})

            return self.cached_or(state, "FROM scratch", make)
        earlier = next((s for s in self.plan.stages[: stage.index] if s.name == stage.base.lower()), None)
        if earlier is not None:
            self._advance(state, self.results[earlier.index])
            return False
        from ..porcelain.pull_policy import ensure

        try:
            ensure(self.repo, stage.base, self.options.pull)
            self._advance(state, self.repo.resolve(stage.base))
        except NotFound as exc:
            raise DockerfileError(f"FROM {stage.base}: {exc}") from None
        return False

    def _instruction(self, state: State, instr: Instruction, step: Step) -> bool:
        return STEPS[instr.keyword](self, state, instr, self._expander(state.env()), step)

    # -- what steps use (steps.Build) ------------------------------------------------

    @property
    def author(self) -> Signature:
        if self._author is None:
            self._author = self.store.default_author()
        return self._author

    def _advance(self, state: State, commit: bytes) -> None:
        image = self.repo.image(commit)
        state.commit, state.config, state.rootfs = commit, image.config, image.rootfs

    def write(
        self, writer, state: State, text: str, rootfs: bytes | None = None, config: dict | None = None
    ) -> bytes:
        rootfs = rootfs or state.rootfs
        assert rootfs is not None  # only FROM scratch writes before the stage has one, and it passes its own
        tree = write_image_tree(writer, state.config if config is None else config, rootfs)
        return writer.commit(tree, [state.commit] if state.commit else [], self.author, self.author, text)

    def cached_or(
        self,
        state: State,
        text: str,
        make: Callable[[object], bytes],
        extra: str = "",
        prepare: Callable[[object], str] | None = None,
    ) -> bool:
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
            hit = None if self.options.no_cache else cache.lookup(self.repo, step_key, state.commit)
            commit = hit or make(w)
        if hit is None:
            cache.remember(self.repo, step_key, commit)
        self._advance(state, commit)
        return hit is not None

    def stage_result(self, ref: str) -> bytes | None:
        stage = next((s for s in self.plan.stages if s.name == ref.lower() or str(s.index) == ref), None)
        return self.results.get(stage.index) if stage is not None else None

    @property
    def context(self) -> Context:
        """The build context, opened on the first COPY or ADD that reads it."""
        if self._context is None:
            from ..fs.statcache import StatCache

            stats = StatCache.for_directory(self.repo.root.cache_dir("build-stat"), self.context_dir)
            self._context = Context(self.context_dir, self.ignore, stats)
        return self._context
