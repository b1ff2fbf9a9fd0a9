"""layergit's benchmark harness: `lg` side by side with its peers, in one run.

The machines this runs on are noisy, so absolute times mean little and the figures
that matter are ratios (lg / peer) measured together, on the same workload, in one
invocation. This package is a harness, not a test suite: it never asserts on a
timing; it prints medians, ratios and whether a stated goal was met, and can write
all figures as JSON for later comparison.

Layout, one concern per module:

- ``tools``     where `lg` and the peer programs are, what they can do, their versions
- ``scratch``   the scratch directory and the dedicated filesystem inside it
- ``workload``  the Debian minbase rootfs every scenario uses, and edits of it
- ``timing``    timing commands, interleaved (hyperfine, else Python), with per-run setup
- ``scenarios`` what every scenario gets (Context, Scenario); the six scenarios of issue 2
- ``containers`` the scenarios of issues 3-6 (import/export, run, density, network, build)
- ``podman``    a private podman store per scenario
- ``procs``     lg's monitors and the memory of the processes a tool leaves running
- ``helper``    untimed helpers that prepares run as commands
- ``catalog``   every scenario, by name or number
- ``report``    the printed table, the checks and the JSON file
- ``cli``       argument parsing and the order things run in

Run it with ``bench/run`` (see bench/README.md).
"""
