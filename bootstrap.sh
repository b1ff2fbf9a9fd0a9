#!/usr/bin/env bash
# Set up this machine for layergit, then run its demo or its tests.
#
#   ./bootstrap.sh demo                 the README's demo (fixtures/demo.sh)
#   ./bootstrap.sh test [PYTEST_ARGS]   the test suite; CI runs exactly this
#
# The install step runs every time and is idempotent: on a machine that already has
# everything it only checks, in well under a second. It needs root the first time (apt,
# /etc/containers); later runs change nothing and need no privileges.
set -euo pipefail

REPO="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
VENV="$REPO/.venv"

# Debian packages layergit uses at run time (git, mounts, namespaces, networking,
# archives) plus the peers it is measured against (podman and slirp4netns, its network without
# root; runc, ostree, skopeo, umoci, hyperfine, wrk) and what the fixtures are built with
# (debootstrap, busybox-static), and pipx, with which a test installs lg as a user would.
APT_PACKAGES=(
    git busybox-static ostree debootstrap podman skopeo umoci runc hyperfine wrk attr
    iproute2 iptables nftables curl ca-certificates xz-utils zstd gzip tar python3-venv tini libseccomp2 uidmap
    libcap2-bin binutils qemu-user-static docker-registry containerd podman-compose systemd passt fuse-overlayfs
    slirp4netns pipx
)
# The exec trampoline's tests assemble its source for both architectures it ships
# (tests/test_trampoline.py) and run the other one under qemu-user.
case "$(uname -m)" in
x86_64) APT_PACKAGES+=(binutils-aarch64-linux-gnu) ;;
aarch64) APT_PACKAGES+=(binutils-x86-64-linux-gnu) ;;
esac

die() {
    echo "bootstrap: $*" >&2
    exit 1
}

usage() {
    echo "usage: $0 demo | test [pytest args...]" >&2
    exit 2
}

ensure_apt_packages() {
    local missing
    # dpkg-query prints nothing for a package it has never heard of, so list the
    # installed ones and take the difference.
    mapfile -t missing < <(comm -23 \
        <(printf '%s\n' "${APT_PACKAGES[@]}" | sort -u) \
        <(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${APT_PACKAGES[@]}" 2>/dev/null \
            | awk '$1 == "ii" { print $2 }' | sort -u))
    [[ ${#missing[@]} -eq 0 ]] && return 0
    echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Set KEY = VALUE in [SECTION] of the TOML file FILE, leaving everything else as it is:
# replaces the key's current value (a multi-line array included) or adds the key at the
# end of the section, adding the section at the end of the file if it is missing.
set_toml_key() {
    local file="$1" section="$2" key="$3" value="$4"
    awk -v section="$section" -v key="$key" -v value="$value" '
        function emit() { print key " = " value; done = 1 }
        function count(s, c) { return gsub(c, "", s) }
        # Skip the continuation lines of the multi-line array being replaced.
        skip { depth += count($0, "\\[") - count($0, "\\]"); if (depth <= 0) skip = 0; next }
        /^[[:space:]]*\[/ {
            if (in_section && !done) emit()
            in_section = ($0 ~ "^[[:space:]]*\\[" section "\\][[:space:]]*(#.*)?$")
            if (in_section) seen = 1
        }
        in_section && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
            if (!done) emit()
            rest = $0; sub(/^[^=]*=/, "", rest)
            depth = count(rest, "\\[") - count(rest, "\\]")
            if (depth > 0) skip = 1
            next
        }
        { print }
        END {
            if (in_section && !done) emit()
            if (!seen) { print ""; print "[" section "]"; emit() }
        }' "$file"
}

# podman's defaults fail on this kind of machine (DESIGN.md, "Peers to measure against"):
# its default nofile limit is above the hard limit this machine allows, so every
# container dies with "error setting rlimit type 7: operation not permitted"; and crun,
# which podman prefers when installed, cannot handle the hybrid cgroups here.
ensure_podman_config() {
    local conf=/etc/containers/containers.conf tmp
    if [[ ! -e "$conf" ]]; then
        mkdir -p "$(dirname "$conf")"
        printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n' >"$conf"
        return
    fi
    tmp="$(mktemp)"
    set_toml_key "$conf" containers default_ulimits '[]' >"$tmp"
    set_toml_key "$tmp" engine runtime '"runc"' >"$tmp.2"
    mv "$tmp.2" "$tmp"
    if cmp -s "$tmp" "$conf"; then
        rm -f "$tmp"
    else
        echo "bootstrap: setting default_ulimits and runtime in $conf" >&2
        cat "$tmp" >"$conf"  # cat keeps the file's owner and mode
        rm -f "$tmp"
    fi
}

# A distribution's udev makes /dev/net/tun and /dev/fuse usable by everyone (systemd's
# 50-udev-default.rules: MODE="0666"); a machine without udev, as this VM, leaves them
# 0600, and then neither lg nor podman without root can run pasta (published ports) or
# fuse-overlayfs. The modes are what such a machine would have had from udev.
ensure_user_devices() {
    local dev
    for dev in /dev/net/tun /dev/fuse; do
        if [[ -c "$dev" && "$(stat -c %a "$dev")" != 666 ]]; then
            echo "bootstrap: making $dev usable by users (mode 0666), as udev's default rules do" >&2
            chmod 0666 "$dev"
        fi
    done
}

# Sets PY to the interpreter that has layergit installed (editable, with the test extra)
# and puts its scripts directory (lg, pytest) first on PATH.
ensure_python() {
    local stamp base
    # Always a venv of the checkout: Debian's python3 refuses pip (PEP 668), and a shared
    # site-packages runs other packages' .pth hooks at every Python start (on this VM one
    # imports certifi: ~12 ms of every lg command). The venv sees none of that.
    if [[ ! -x "$VENV/bin/python" ]]; then
        command -v python3 >/dev/null || die "python3 not found"
        # sys.executable: the real interpreter, not a wrapper such as a pyenv shim.
        base="$(python3 -c 'import sys; print(sys.executable); sys.exit(sys.version_info < (3, 11))')" \
            || die "layergit needs Python >= 3.11; python3 is $(python3 -V 2>&1)"
        "$base" -m venv "$VENV" || die "cannot create $VENV (Debian: apt-get install python3-venv)"
    fi
    PY="$VENV/bin/python"

    # pip is slow even with nothing to do, so skip it while the stamp says this python
    # has this checkout's pyproject.toml installed, and the install is still there.
    # (Unquoted so that ~ expands; HOME may be unset under CI.)
    stamp=${XDG_CACHE_HOME:-~/.cache}/layergit/bootstrap-python.stamp
    if [[ "$(cat "$stamp" 2>/dev/null)" != "$(stamp_line)" ]] || ! installed_from_repo; then
        pip_install || die "pip install failed"
        mkdir -p "$(dirname "$stamp")"
        stamp_line >"$stamp"
    fi

    # Bytecode now, even where PYTHONDONTWRITEBYTECODE is set (CI images often set it):
    # without it every lg command compiles its modules again (~30 ms).
    "$PY" -m compileall -q "$REPO/layergit" "$REPO/cli" >/dev/null
    link_lg
    PATH="$VENV/bin:$PATH"
    export PATH
}

# lg on every shell's PATH: a link in /usr/local/bin to the venv's script, made as
# root unless something else already has that name.
link_lg() {
    local link=/usr/local/bin/lg
    [[ $EUID -eq 0 ]] || return 0
    if [[ -e "$link" || -L "$link" ]] && [[ "$(readlink "$link")" != */.venv/bin/lg ]]; then
        echo "bootstrap: $link exists and is not ours; run $VENV/bin/lg" >&2
        return 0
    fi
    ln -sfn "$VENV/bin/lg" "$link"
}

# editable_mode=compat: the checkout goes on sys.path through a plain .pth line. The
# default editable finder is imported by every Python start (pathlib, importlib.util:
# ~10 ms of each lg command in a clean venv).
pip_install() {
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
        "$PY" -m pip install -q -e "${REPO}[test]" --config-settings editable_mode=compat
}

# What the stamp holds after a successful install: which interpreter, which checkout,
# which pyproject.toml.
stamp_line() {
    echo "$PY $REPO editable_mode=compat $(sha256sum <"$REPO/pyproject.toml")"
}

# Is layergit installed into PY as an editable install of this very checkout?
installed_from_repo() {
    # -P: do not look in the current directory, where a layergit.egg-info left by a
    # build would shadow the real installation.
    "$PY" -P - "$REPO" <<'EOF'
import json, pathlib, sys
from importlib import metadata
try:
    info = json.loads(metadata.distribution("layergit").read_text("direct_url.json") or "{}")
except metadata.PackageNotFoundError:
    sys.exit(1)
ok = info.get("url") == pathlib.Path(sys.argv[1]).as_uri() and info.get("dir_info", {}).get("editable")
sys.exit(0 if ok else 1)
EOF
}

# docker-registry and containerd are test peers the tests start themselves, each with
# its own config, storage and port: the services their packages enable must not run
# (a system registry on :5000 would answer tests meant for theirs).
stop_peer_services() {
    local unit
    for unit in docker-registry containerd; do
        if command -v systemctl >/dev/null && systemctl is-enabled --quiet "$unit" 2>/dev/null; then
            echo "bootstrap: stopping and disabling the $unit service (tests start their own)" >&2
            systemctl stop "$unit" >/dev/null 2>&1 || true  # fails harmlessly without systemd running
            systemctl disable "$unit" >/dev/null 2>&1 || true
        fi
    done
}

install_all() {
    ensure_apt_packages
    stop_peer_services
    ensure_podman_config
    ensure_user_devices
    ensure_python
}

[[ $# -ge 1 ]] || usage
command="$1"
shift
case "$command" in
demo)
    [[ $# -eq 0 ]] || usage
    install_all
    exec "$REPO/fixtures/demo.sh"
    ;;
test)
    install_all
    LG_FIXTURE_BUSYBOX="$("$REPO/fixtures/busybox.sh" | tail -n1)"
    export LG_FIXTURE_BUSYBOX
    cd "$REPO"
    # No path here: pyproject's testpaths gives the whole suite, and a path given after
    # "test" (./bootstrap.sh test tests/unit) runs just that.
    exec "$PY" -m pytest -q -rs "$@"
    ;;
*)
    usage
    ;;
esac
