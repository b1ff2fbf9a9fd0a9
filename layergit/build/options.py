"""What a build is asked to do: lg build's flags as one value."""

from __future__ import annotations

from dataclasses import dataclass, field

NETWORKS = ("host", "none", "bridge")


@dataclass
class BuildOptions:
    dockerfile: str | None = None  # default: CONTEXT/Dockerfile, else CONTEXT/Containerfile
    dockerfile_text: str | None = None  # the Dockerfile itself (lg build -f -)
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    network: str = "bridge"  # of RUN steps, unless RUN --network says otherwise
    pull: str = "missing"  # FROM images: pulled when missing here, always, or never
    # --secret: id to value, kept in memory only (build.mounts); left out of repr so
    # that no message or traceback shows one
    secrets: dict[str, bytes] = field(default_factory=dict, repr=False)
