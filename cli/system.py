"""lg version and lg info, with Docker's field names for --format."""

from __future__ import annotations

import click

from .output import human_size, repo_from


def _version_doc(v) -> dict:
    client = {"Version": v.version, "PythonVersion": v.python, "Os": v.os, "Arch": v.arch}
    # lg has no daemon: "Server" is the store this lg reads and writes, which scripts ask for
    return {"Client": client, "Server": {"Version": v.version, "StoreFormat": v.store_format}}


@click.command("version")
@click.option("-f", "--format", "fmt", metavar="TEMPLATE", help="Go template, e.g. '{{.Client.Version}}'.")
@click.option("--json", "as_json", is_flag=True)
def version_cmd(fmt, as_json):
    """Show lg's version and its store's format version."""
    from layergit.porcelain import system

    doc = _version_doc(system.version())
    if fmt or as_json:
        _formatted(doc, fmt, as_json)
        return
    c, s = doc["Client"], doc["Server"]
    click.echo(f"Client:\n Version:        {c['Version']}\n Python version: {c['PythonVersion']}\n"
               f" OS/Arch:        {c['Os']}/{c['Arch']}\n\nStore:\n Format:         {s['StoreFormat']}")


def _formatted(doc: dict, fmt: str | None, as_json: bool) -> None:
    if as_json or fmt == "json":
        from .gotemplate import parse

        click.echo(parse("{{json .}}").execute(doc))
    else:
        from .formats import print_each

        print_each(fmt or "", [doc])


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


@click.command("info")
@click.option("-f", "--format", "fmt", metavar="TEMPLATE", help="Go template, e.g. '{{.CgroupVersion}}'.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def info_cmd(ctx, fmt, as_json):
    """Show the root, what it holds, and what the host offers the runtime."""
    from layergit.porcelain import system

    i = system.info(repo_from(ctx))
    h = i.host
    security = [name for name, on in (("seccomp", h.seccomp), ("userns", h.userns)) if on]
    doc = {
        "ID": "", "Containers": i.containers, "ContainersRunning": i.running, "ContainersPaused": i.paused,
        "ContainersStopped": i.stopped, "Images": i.images, "Networks": i.networks, "Driver": "overlay",
        "DockerRootDir": i.root, "StoreSize": i.store_bytes, "CacheSize": i.cache_bytes,
        "ServerVersion": i.version.version, "StoreFormat": i.version.store_format,
        "KernelVersion": h.kernel, "OperatingSystem": i.version.os, "OSType": i.version.os,
        "Architecture": i.version.arch, "NCPU": h.cpus, "MemTotal": h.memory,
        "CgroupDriver": "cgroupfs", "CgroupVersion": str(h.cgroup_version), "SecurityOptions": security,
        "Features": {"overlay": h.overlay, "userns": h.userns, "seccomp": h.seccomp, "bpf": h.bpf},
        "Programs": h.programs,
    }
    if fmt or as_json:
        _formatted(doc, fmt, as_json)
        return
    from layergit.runtime.features import PROGRAMS
    from layergit.text import quoted

    lines = [
        f"Root:               {quoted(i.root)}",
        f"Images:             {i.images}",
        f"Containers:         {i.containers} (running {i.running}, paused {i.paused}, stopped {i.stopped})",
        f"Networks:           {i.networks}",
        f"Store size:         {human_size(i.store_bytes)}",
        f"Cache size:         {human_size(i.cache_bytes)}",
        f"Version:            {i.version.version} (store format {i.version.store_format})",
        f"Kernel:             {h.kernel} ({i.version.arch}, {h.cpus} CPUs, {human_size(h.memory)} memory)",
        f"Cgroup version:     {h.cgroup_version}",
        f"Overlay:            {_yes(h.overlay)}",
        f"User namespaces:    {_yes(h.userns)}",
        f"Seccomp:            {_yes(h.seccomp)}",
        f"BPF:                {_yes(h.bpf)}",
        "Programs:",
    ]
    for name, path in h.programs.items():
        lines.append(f"  {name + ':':17} {quoted(path) if path else 'MISSING: ' + PROGRAMS[name]}")
    click.echo("\n".join(lines))
