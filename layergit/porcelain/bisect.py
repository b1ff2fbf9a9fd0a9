"""lg bisect: find the version that broke, by binary search, as git bisect does.

The versions are either the first-parent chain from BAD down to GOOD, or the
versions a tag pointed to, in the order it pointed to them (its reflog: what
``lg pull``, ``lg build -t`` and ``lg tag`` moved it through). Each step proposes
the untested version in the middle of what is left between the newest good and
the oldest bad; ``good``/``bad``/``skip`` mark one, and ``run`` marks them by
running a command in a container of each (``lg run``), reading its exit code as git
bisect reads a script's: 0 good, 125 skip, 1-127 bad, and a signal (128 and above)
stops the bisect unless ``signal_is_bad`` (an OOM kill is then bad). lg's own
failure to start a container stops it with lg's error, never as a skip.

Bisecting moves no tag: candidates are named by id. The state is ``bisect.json`` in
the root (docs/format.md) and the refs ``refs/layergit/bisect/ID`` that keep its
versions alive through ``lg gc`` (the bad version for a chain, every candidate for a
reflog, which a tag's deletion would drop); ``lg bisect reset`` removes both.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from ..errors import Conflict, CorruptStore, LgError, NotFound, UsageError
from ..store import names
from .repo import Repo, store_lock

REF_PREFIX = "refs/layergit/bisect/"
STATE_VERSION = 1
STATE_MAX = 64 << 20  # bytes of bisect.json read: 40-digit ids, a million versions fit
GOOD, BAD, SKIP = "good", "bad", "skip"
SKIP_CODE = 125


class NoBisect(NotFound):
    """A bisect command with no bisect in progress."""


@dataclass
class State:
    """bisect.json: the candidates oldest first (index 0 is the first good version),
    the verdicts given so far by id, and the log ``lg bisect log`` prints."""

    candidates: list[str]
    source: str  # "chain" or "reflog TAG"
    verdicts: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"version": STATE_VERSION, "candidates": self.candidates, "source": self.source,
                "verdicts": self.verdicts, "log": self.log}

    @classmethod
    def from_json(cls, data: object) -> State:
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise CorruptStore("bisect.json is not a bisect state of version 1 (lg bisect reset removes it)")
        candidates, verdicts, log = data.get("candidates"), data.get("verdicts"), data.get("log")
        ok = (isinstance(candidates, list) and len(candidates) >= 2 and all(_is_id(c) for c in candidates)
              and isinstance(verdicts, dict) and all(_is_id(k) and v in (GOOD, BAD, SKIP)
                                                      for k, v in verdicts.items())
              and isinstance(log, list) and all(isinstance(line, str) for line in log)
              and isinstance(data.get("source"), str))
        if not ok:
            raise CorruptStore("bisect.json does not read as a bisect state (lg bisect reset removes it)")
        return cls(candidates, data["source"], verdicts, log)  # type: ignore[arg-type]


def _is_id(text: object) -> bool:
    return isinstance(text, str) and len(text) == 40 and all(c in "0123456789abcdef" for c in text)


@dataclass(frozen=True)
class Step:
    """Where a bisect stands: the version to test next, or the first bad one found, or
    the versions it is among when only skipped ones are left."""

    next: str | None  # a version to test
    left: int  # versions that could still be the first bad one
    first_bad: str | None = None
    among: tuple[str, ...] = ()  # the first bad is one of these (all skipped)

    @property
    def steps(self) -> int:
        """Roughly how many more tests: log2 of what is left."""
        return max(0, (self.left - 1).bit_length() - 1) if self.left > 1 else 0


def load(repo: Repo) -> State:
    try:
        with open(repo.root.bisect, "rb") as f:
            data = f.read(STATE_MAX + 1)
    except FileNotFoundError:
        raise NoBisect("no bisect in progress: start one with lg bisect start BAD GOOD") from None
    if len(data) > STATE_MAX:
        raise CorruptStore(f"bisect.json is larger than {STATE_MAX} bytes (lg bisect reset removes it)")
    try:
        return State.from_json(json.loads(data))
    except ValueError:
        raise CorruptStore("bisect.json is not JSON (lg bisect reset removes it)") from None


def _save(repo: Repo, state: State) -> None:
    tmp = f"{repo.root.bisect}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state.to_json(), f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, repo.root.bisect)


def _chain(repo: Repo, bad: bytes, good: bytes, bad_rev: str, good_rev: str) -> list[str]:
    """GOOD, then every version after it up to BAD, along BAD's first parents."""
    out = []
    oid: bytes | None = bad
    while oid != good:
        if oid is None:
            raise UsageError(f"{good_rev} is not an ancestor of {bad_rev} (along first parents):"
                             " bisect a tag's versions with --reflog")
        out.append(oid.hex())
        parents = repo.store.commit(oid).parents
        oid = parents[0] if parents else None
    return [good.hex()] + out[::-1]


def _reflog(repo: Repo, tag: str) -> list[str]:
    """The versions ``tag`` pointed to, in the order it first pointed to each."""
    image = names.parse(tag)
    moves = repo.store.reflog(image.ref)
    if not moves:
        raise NotFound(f"{image} has no reflog here: it never moved in this store")
    zero = b"\0" * 20
    return list(dict.fromkeys(new.hex() for _, new, _ in moves if new != zero))


def start(repo: Repo, bad: str | None, good: str | None, reflog: str | None = None) -> Step:
    """Begin a bisect between BAD and GOOD, or over the versions of tag ``reflog`` (its
    newest as bad and oldest as good unless BAD and GOOD are given)."""
    if os.path.lexists(repo.root.bisect):
        raise Conflict("a bisect is in progress: lg bisect reset ends it")
    with store_lock(repo):
        if reflog is None:
            if bad is None or good is None:
                raise UsageError("lg bisect start needs BAD and GOOD (or --reflog TAG)")
            bad_id, good_id = repo.resolve(bad), repo.resolve(good)
            candidates = _chain(repo, bad_id, good_id, bad, good)
            kept = [bad_id.hex()]
            source = "chain"
        else:
            every = _reflog(repo, reflog)
            bad_hex = repo.resolve(bad).hex() if bad else every[-1]
            good_hex = repo.resolve(good).hex() if good else every[0]
            for rev, hexid in ((bad or "BAD", bad_hex), (good or "GOOD", good_hex)):
                if hexid not in every:
                    raise UsageError(f"{rev} is not one of the versions {reflog} pointed to")
            lo, hi = every.index(good_hex), every.index(bad_hex)
            if lo >= hi:
                raise UsageError(f"GOOD must be older than BAD in {reflog}'s history")
            candidates = every[lo:hi + 1]
            kept = candidates
            source = f"reflog {names.parse(reflog)}"
        if len(candidates) < 2:
            raise UsageError("BAD and GOOD are the same version")
        state = State(candidates, source, {candidates[-1]: BAD, candidates[0]: GOOD})
        state.log = [f"# {source}", f"lg bisect bad {candidates[-1]}", f"lg bisect good {candidates[0]}"]
        done = []
        try:
            for hexid in dict.fromkeys(kept):
                repo.store.set_ref(REF_PREFIX + hexid, bytes.fromhex(hexid), None, "bisect start")
                done.append(hexid)
            _save(repo, state)
        except BaseException:
            for hexid in done:
                repo.store.delete_ref(REF_PREFIX + hexid)
            raise
    return where(state)


def where(state: State) -> Step:
    """The next version to test, or the result."""
    c = state.candidates
    good = [i for i, h in enumerate(c) if state.verdicts.get(h) == GOOD]
    bad = [i for i, h in enumerate(c) if state.verdicts.get(h) == BAD]
    lo, hi = max(good), min(bad)
    if lo > hi:
        raise Conflict(f"{c[lo][:12]} was marked good but is newer than {c[hi][:12]}, marked bad:"
                       " lg bisect log shows what was said")
    open_ = [i for i in range(lo + 1, hi) if state.verdicts.get(c[i]) != SKIP]
    if hi - lo == 1:
        return Step(None, 1, c[hi])
    if not open_:
        return Step(None, hi - lo, None, tuple(c[lo + 1:hi + 1]))
    middle = (lo + hi) / 2
    pick = min(open_, key=lambda i: (abs(i - middle), i))
    return Step(c[pick], hi - lo)


def mark(repo: Repo, verdict: str, revs: list[str] | None = None, current: str | None = None) -> Step:
    """Mark versions (default: the one ``where`` proposes) good, bad or skipped."""
    state = load(repo)
    step = where(state)
    targets = [repo.resolve(r).hex() for r in revs] if revs else [step.next] if step.next else []
    if not targets:
        raise UsageError("the bisect is over: name a version, or lg bisect reset")
    for hexid in targets:
        if hexid not in state.candidates:
            raise UsageError(f"{hexid[:12]} is not one of the versions being bisected")
        state.verdicts[hexid] = verdict
        state.log.append(f"lg bisect {verdict} {hexid}")
    step = where(state)
    _save(repo, state)
    return step


def reset(repo: Repo) -> bool:
    """End the bisect: its state and refs go; False if there was none."""
    existed = os.path.lexists(repo.root.bisect)
    for ref, _ in repo.store.refs(REF_PREFIX):
        repo.store.delete_ref(ref)
    if existed:
        os.unlink(repo.root.bisect)
    return existed


def check(repo: Repo) -> tuple[list[str], list[str]]:
    """(problems, notes) for lg fsck: a state that reads, whose versions are all in the
    store, and refs left without a state (a start killed half-way), which lg gc drops."""
    problems: list[str] = []
    refs = repo.store.refs(REF_PREFIX)
    if not os.path.lexists(repo.root.bisect):
        if not refs:
            return problems, []
        return problems, [f"{len(refs)} bisect ref(s) without a bisect in progress; lg gc removes them"]
    try:
        state = load(repo)
    except LgError as exc:
        return [str(exc)], []
    for hexid in state.candidates:
        try:
            repo.store.commit(bytes.fromhex(hexid))
        except LgError as exc:
            problems.append(f"bisect.json: version {hexid[:12]}: {exc}")
    kept = {ref[len(REF_PREFIX):] for ref, _ in refs}
    if state.candidates[-1] not in kept:
        problems.append(f"bisect.json: no ref keeps version {state.candidates[-1][:12]} alive")
    return problems, [f"a bisect is in progress over {len(state.candidates)} versions (lg bisect log)"]


def prune(repo: Repo) -> int:
    """lg gc: drop bisect refs that no bisect state names (a start killed half-way)."""
    if os.path.lexists(repo.root.bisect):
        return 0
    refs = repo.store.refs(REF_PREFIX)
    for ref, _ in refs:
        repo.store.delete_ref(ref)
    return len(refs)


def log(repo: Repo) -> list[str]:
    return load(repo).log


@dataclass(frozen=True)
class Trial:
    """One candidate run by ``lg bisect run``."""

    id: str
    code: int
    verdict: str


class Stopped(LgError):
    """A candidate killed by a signal (or exiting 128 and above) without --signal-is-bad."""


def verdict_of(code: int, signal_is_bad: bool) -> str | None:
    """git bisect run's reading of an exit code; None: stop."""
    if code == 0:
        return GOOD
    if code == SKIP_CODE:
        return SKIP
    if 0 < code < 128 or signal_is_bad:
        return BAD
    return None


def run(repo: Repo, options, signal_is_bad: bool = False, on_trial=None) -> tuple[Step, list[Trial]]:
    """Test candidates with ``options`` (RunOptions: the command and run flags) until
    the first bad version is found; ``on_trial(Trial)`` hears of each as it ends."""
    from dataclasses import replace

    from ..errors import ExitCode
    from . import containers

    trials: list[Trial] = []
    step = where(load(repo))
    while step.next is not None:
        candidate = step.next
        try:
            _, code = containers.run(repo, candidate, replace(options), detach=False)
        except LgError as exc:
            if exc.exit_code not in (ExitCode.CANNOT_EXECUTE, ExitCode.COMMAND_NOT_FOUND):
                raise  # lg could not run the candidate: stop with its error
            code = exc.exit_code
        assert code is not None
        verdict = verdict_of(code, signal_is_bad)
        if verdict is None:
            raise Stopped(f"version {candidate[:12]} exited with {code} (a signal: 128+{code - 128});"
                          " the bisect stops (--signal-is-bad counts it as bad)")
        trial = Trial(candidate, code, verdict)
        trials.append(trial)
        step = mark(repo, verdict, [candidate])
        if on_trial is not None:
            on_trial(trial, step)
    return step, trials
