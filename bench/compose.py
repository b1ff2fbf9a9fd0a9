"""Scenario 31 (issue 19): one MariaDB and SITES WordPress sites, from nothing running to
every site answering, brought up by `lg compose up -d` and by the same `lg run` lines
one by one (what examples/wordpress/up.sh did before the compose file).

The images are examples/wordpress's `web` and `mariadb` targets, built from Debian
packages (the mirror must be reachable; minutes the first time) into a root kept
between bench runs under /var/tmp/layergit-bench-wordpress, so that a run finds them
present, as the issue asks. Each timed run starts from a fresh database volume (so
MariaDB's first-start initialisation is in both rows) and ends when every site's
front page answers below 500 (WordPress answers 500 until its database is reachable).
`LG_BENCH_SITES` sets another count (40 by default).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from .scenarios import Context, Scenario, SetupFailed
from .timing import Case, Goal

SITES = int(os.environ.get("LG_BENCH_SITES", "40"))
ROOT = Path("/var/tmp/layergit-bench-wordpress/root")
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "wordpress"
LG_UP = f"lg compose up -d, MariaDB + {SITES} WordPress sites, until all answer"
GOAL = Goal("lg compose <= 1.2x lg run one by one (issue 19)", "ratio", 1.2)
FIRST_PORT = 8081

# Polls every site until each answers below 500; exits 1 after five minutes.
WAIT = """
import sys, time, urllib.error, urllib.request
ports, deadline = [int(p) for p in sys.argv[1:]], time.monotonic() + 300
while ports and time.monotonic() < deadline:
    for port in list(ports):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).close()
            ports.remove(port)
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                ports.remove(port)
        except OSError:
            pass
    time.sleep(0.2)
sys.exit(1 if ports else 0)
"""


def _images(ctx: Context, env: dict) -> None:
    """wordpress-web and wp-mariadb in ROOT, built once (the build cache makes later runs instant)."""
    have = ctx.run(ctx.lg("images", "--format", "{{.Repository}}"), env).split()
    if "wordpress-web" in have and "wp-mariadb" in have:
        return
    if "debian" not in have:
        minbase = ctx.workload.fixture.parent / "minbase.tar"
        if not minbase.exists():
            raise SetupFailed(f"{minbase} missing: fixtures/minbase.sh makes it")
        ctx.run(ctx.lg("import", minbase, "-t", "debian:bookworm"), env, "import minbase as debian:bookworm")
    for target, tag in (("web", "wordpress-web"), ("mariadb", "wp-mariadb")):
        ctx.run(ctx.lg("build", "--target", target, "-t", tag, EXAMPLE), env, f"lg build --target {target}")


def build_sites(ctx: Context) -> list[Case]:
    ROOT.parent.mkdir(parents=True, exist_ok=True)
    env = {"LG_ROOT": str(ROOT)}
    broken = None
    try:
        _images(ctx, env)
    except SetupFailed as exc:
        broken = str(exc)
    project = ctx.path("wordpress")
    shutil.copytree(EXAMPLE, project, dirs_exist_ok=True)
    ctx.run(["sh", str(project / "sites.sh"), str(SITES)], env, "sites.sh")
    secrets = dict(line.split("=", 1) for line in (project / ".env").read_text().splitlines() if "=" in line)
    lg = shlex.join(ctx.lg())
    compose = f"{lg} compose --project-directory {shlex.quote(str(project))}"
    ports = " ".join(str(FIRST_PORT + i) for i in range(SITES))
    wait = f"{shlex.quote(sys.executable)} -c {shlex.quote(WAIT)} {ports}"
    by_hand = _by_hand(lg, project, secrets)
    clean = (f"{compose} down -v >/dev/null 2>&1; {lg} rm -f $({lg} ps -aq) >/dev/null 2>&1;"
             f" {lg} network rm wpbench >/dev/null 2>&1; {lg} volume rm wpbench-db >/dev/null 2>&1; true")
    ctx.cleanups.append(lambda: ctx.run(["sh", "-c", clean], env))
    return [
        Case("lg", LG_UP, ["sh", "-c", f"{compose} up -d >/dev/null && {wait}"], prepare=clean, env=env,
             broken=broken),
        # The baseline is lg itself, run by hand: a peer row, so that the goal's ratio is taken.
        Case("lg run", f"lg run one by one, MariaDB + {SITES} sites, until all answer",
             ["sh", "-c", f"{by_hand} && {wait}"], prepare=clean, env=env, broken=broken, vs=LG_UP,
             goal=GOAL),
    ]


def _by_hand(lg: str, project: Path, secrets: dict[str, str]) -> str:
    """The lg run lines the compose file stands for, with the same restart policy and
    the same wait for the database (its health command, polled)."""
    q = shlex.quote
    db = (f"{lg} run -d --name db --network wpbench --network-alias db --restart unless-stopped"
          f" -v wpbench-db:/var/lib/mysql -v {q(str(project / 'initdb'))}:/docker-entrypoint-initdb.d:ro"
          f" -e MARIADB_ROOT_PASSWORD={q(secrets['MARIADB_ROOT_PASSWORD'])} wp-mariadb >/dev/null")
    sites = []
    for i in range(1, SITES + 1):
        password = secrets[f"BLOG{i}_PASSWORD"]
        sites.append(f"{lg} run -d --name blog{i} --network wpbench --restart unless-stopped"
                     f" -p {FIRST_PORT + i - 1}:80 -e DB_HOST=db -e DB_NAME=blog{i} -e DB_USER=blog{i}"
                     f" -e DB_PASSWORD={q(password)} wordpress-web >/dev/null")
    return " && ".join([
        f"{lg} network create wpbench >/dev/null", f"{lg} volume create wpbench-db >/dev/null", db,
        f"until {lg} exec db mariadb-admin --silent ping 2>/dev/null; do sleep 0.2; done", *sites])


COMPOSE_SCENARIOS = [
    Scenario(31, "compose-sites", f"MariaDB + {SITES} WordPress sites: lg compose up vs lg run",
             f"One MariaDB and {SITES} WordPress sites from examples/wordpress (images present), from"
             " nothing running to every site answering: `lg compose up -d` against the same `lg run`"
             " lines one by one.",
             LG_UP, runs=3, quick_runs=1, build=build_sites),
]
