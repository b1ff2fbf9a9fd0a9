"""Docker's flags for each command, so that ``lg COMMAND --help`` can say which of them
lg does not take: nobody has to guess whether a flag from a Docker script works.

The lists are Docker's (CLI 27); what lg lacks is computed from the command's own
options when its help is shown, so the note never goes stale as flags are added.
"""

from __future__ import annotations

_RUN = (
    "--add-host --annotation -a/--attach --blkio-weight --blkio-weight-device --cap-add --cap-drop"
    " --cgroup-parent --cgroupns --cidfile --cpu-period --cpu-quota --cpu-rt-period --cpu-rt-runtime"
    " -c/--cpu-shares --cpus --cpuset-cpus --cpuset-mems --device --device-cgroup-rule --device-read-bps"
    " --device-read-iops --device-write-bps --device-write-iops --disable-content-trust --dns --dns-option"
    " --dns-search --domainname --entrypoint -e/--env --env-file --expose --gpus --group-add --health-cmd"
    " --health-interval --health-retries --health-start-interval --health-start-period --health-timeout"
    " --hostname --init -i/--interactive --ip --ip6 --ipc --isolation --kernel-memory -l/--label --label-file"
    " --link --link-local-ip --log-driver --log-opt --mac-address -m/--memory --memory-reservation"
    " --memory-swap --memory-swappiness --mount --name --network --network-alias --no-healthcheck"
    " --oom-kill-disable --oom-score-adj --pid --pids-limit --platform --privileged -p/--publish"
    " -P/--publish-all --pull -q/--quiet --read-only --restart --rm --runtime --security-opt --shm-size"
    " --stop-signal --stop-timeout --storage-opt --sysctl --tmpfs -t/--tty --ulimit -u/--user --userns"
    " --uts -v/--volume --volume-driver --volumes-from -w/--workdir"
)

DOCKER_FLAGS = {
    "run": _RUN + " -d/--detach --detach-keys --sig-proxy",
    "create": _RUN,
    "ps": "-a/--all -f/--filter --format -n/--last -l/--latest --no-trunc -q/--quiet -s/--size",
    "images": "-a/--all --digests -f/--filter --format --no-trunc -q/--quiet --tree",
    "inspect": "-f/--format -s/--size --type",
    "logs": "--details -f/--follow --since -n/--tail -t/--timestamps --until",
    "events": "-f/--filter --format --since --until",
    "rm": "-f/--force -l/--link -v/--volumes",
    "rmi": "-f/--force --no-prune --platform",
    "start": "-a/--attach --checkpoint --checkpoint-dir --detach-keys -i/--interactive",
    "stop": "-s/--signal -t/--time",
    "restart": "-s/--signal -t/--time",
    "kill": "-s/--signal",
    "exec": "-d/--detach --detach-keys -e/--env --env-file -i/--interactive --privileged -t/--tty -u/--user"
            " -w/--workdir",
    "commit": "-a/--author -c/--change -m/--message -p/--pause",
    "save": "-o/--output --platform",
    "load": "-i/--input -q/--quiet --platform",
    "build": "--add-host --allow --annotation --attest --build-arg --build-context --builder --cache-from"
             " --cache-to --call --cgroup-parent --check --iidfile --label --load --metadata-file --network"
             " --no-cache --no-cache-filter -o/--output --platform --progress --provenance --pull --push"
             " -q/--quiet --sbom --secret --shm-size --ssh -t/--tag --target --ulimit -f/--file",
    "cp": "-a/--archive -L/--follow-link -q/--quiet",
    "stats": "-a/--all --format --no-stream --no-trunc",
    "version": "-f/--format",
    "info": "-f/--format",
}


def missing(command: str, option_names: set[str]) -> list[str]:
    """Docker's flags for ``command`` that none of lg's options answers to."""
    out = []
    for flag in DOCKER_FLAGS.get(command, "").split():
        names = flag.split("/")
        if not option_names.intersection(names):
            out.append(names[-1])
    return out


def epilog(command: str, option_names: set[str]) -> str:
    flags = missing(command, option_names)
    if not flags:
        return ""
    import textwrap

    # "\b" keeps click from re-wrapping the paragraph, which would split flags at hyphens
    text = "Docker's flags that lg does not take: " + ", ".join(flags) + "."
    return "\b\n" + textwrap.fill(text, 78, break_on_hyphens=False, break_long_words=False)
