"""The pre-receive hook of ``lg serve --allow-push``: lg's checks of a push, before any ref moves.

git's receive-pack keeps what a push brings in a quarantine object directory and runs
this hook with the updates on stdin (``OLD NEW REF`` lines); a non-zero exit refuses
the whole push and the quarantine is dropped. git itself has fsck'd every object
(receive.fsckObjects) and refuses deletions and non-fast-forwards (the server's
config); this hook refuses refs that are not image names and commits that are not
images, as ``lg pull`` does for what it fetches.
"""

from __future__ import annotations

import os
import sys

from ..errors import LgError
from ..root import Root
from ..store import names
from ..text import printable
from .repo import Repo

_ZERO = "0" * 40
MAX_UPDATES = 64 << 20  # bytes of "OLD NEW REF" lines: some 500,000 refs; a bigger push is refused


def check(root: str, lines: list[str], incoming: str | None) -> list[str]:
    """Problems with a push (empty: admit it)."""
    repo = Repo(Root.resolve(root))
    tips = []
    problems = []
    for line in lines:
        old, new, ref = (line.split(" ", 2) + ["", ""])[:3]
        image = names.from_ref(ref)
        if image is None or image.ref != ref:
            problems.append(f"{printable(ref)} is not a layergit image name; lg serve accepts only images")
        elif new == _ZERO:
            problems.append(f"{image}: lg serve does not delete images")
        elif len(new) != 40 or new.strip("0123456789abcdef"):
            problems.append(f"{image}: not a commit id: {printable(new[:80])}")
        else:
            tips.append(bytes.fromhex(new))
    if problems or not tips:
        return problems
    from .maintenance import check_received

    with repo.store.quarantine(repo.root.tmp, incoming) as view:
        report = check_received(Repo(repo.root, view), tips, repo.store.has)
    return report.problems


def main() -> int:
    # Every line is read: git applies every update of a push the hook admits, read or
    # not, so a hook that stopped at a bound would let the refs after it through.
    data = sys.stdin.buffer.read(MAX_UPDATES + 1)
    if len(data) > MAX_UPDATES:
        problems = [f"more than {MAX_UPDATES >> 20} MiB of ref updates in one push"]
    else:
        lines = [line.strip() for line in data.decode(errors="replace").splitlines() if line.strip()]
        try:
            problems = check(sys.argv[1], lines, os.environ.get("GIT_QUARANTINE_PATH"))
        except LgError as exc:
            problems = [str(exc)]
    for problem in problems[:5]:
        print(f"lg: refused: {printable(problem)}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
