"""Every scenario, in order: the image store's (issue 2, scenarios.py), then import and
export, the runtime, networking and build (issues 3-6, containers.py), then big files,
a big store and many files (issue 13, bigfiles.py, bigstore.py, manyfiles.py), git
remotes (issue 14, remotes.py), registries (issue 15, registry.py), reviewing history
(issue 16, review.py), Docker's --format (issue 20, muscle.py), bisect and rebase
(issue 17, history.py), lg stats (issue 18, storage.py), compose (issue 19,
compose.py) and lg without root (issue 21, rootless.py)."""

from __future__ import annotations

from .bigfiles import BIG_FILE_SCENARIOS
from .bigstore import BIG_STORE_SCENARIOS
from .compose import COMPOSE_SCENARIOS
from .containers import CONTAINER_SCENARIOS
from .history import HISTORY_SCENARIOS
from .manyfiles import MANY_FILES_SCENARIOS
from .muscle import MUSCLE_SCENARIOS
from .registry import REGISTRY_SCENARIOS
from .remotes import REMOTE_SCENARIOS
from .review import REVIEW_SCENARIOS
from .rootless import ROOTLESS_SCENARIOS
from .scenarios import STORE_SCENARIOS, Scenario
from .storage import STORAGE_SCENARIOS

SCENARIOS: list[Scenario] = sorted(
    STORE_SCENARIOS + CONTAINER_SCENARIOS + BIG_FILE_SCENARIOS + REMOTE_SCENARIOS + REGISTRY_SCENARIOS
    + REVIEW_SCENARIOS + MUSCLE_SCENARIOS + HISTORY_SCENARIOS + STORAGE_SCENARIOS + COMPOSE_SCENARIOS
    + ROOTLESS_SCENARIOS + BIG_STORE_SCENARIOS + MANY_FILES_SCENARIOS,
    key=lambda s: s.number)


def select(names: list[str]) -> list[Scenario]:
    """Scenarios by name or number, in their canonical order; all when none are named."""
    if not names:
        return list(SCENARIOS)
    by_key = {s.name: s for s in SCENARIOS} | {str(s.number): s for s in SCENARIOS}
    unknown = [n for n in names if n not in by_key]
    if unknown:
        raise ValueError(f"unknown scenario {', '.join(unknown)}; choose from "
                         + ", ".join(f"{s.number}/{s.name}" for s in SCENARIOS))
    wanted = {by_key[n].name for n in names}
    return [s for s in SCENARIOS if s.name in wanted]
