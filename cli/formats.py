"""What ``--format`` templates see: Docker's field names for each listing.

A Docker script says ``{{.Names}}``, ``{{.RunningFor}}``, ``{{.Repository}}``: each
row here is a :class:`cli.gotemplate.Record` with the fields Docker's formatter
gives (strings, as Docker's are), its table headers, and its default table.
"""

from __future__ import annotations

from datetime import datetime, timezone

import click

from .gotemplate import Record, parse, render, safe


def human_duration(seconds: float) -> str:
    """Docker's go-units HumanDuration, the words of ``CREATED`` and ``RunningFor``."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def _ago(when: datetime) -> str:
    return human_duration((datetime.now(timezone.utc) - when).total_seconds()) + " ago"


def _go_time(when: datetime) -> str:
    """Go's time.Time.String() in UTC, as ``CreatedAt`` shows it."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def _labels_text(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _ellipsis(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _iso(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return datetime.fromtimestamp(0, timezone.utc)


PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
              "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS",
              "Names": "NAMES", "Labels": "LABELS", "Label": "LABEL", "Mounts": "MOUNTS",
              "Networks": "NETWORKS", "Size": "SIZE"}
PS_TABLE = "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"


def ps_record(row, no_trunc: bool) -> Record:
    created = _iso(row.created)
    command = row.command if no_trunc else _ellipsis(row.command, 20)
    return Record(
        ID=row.id if no_trunc else row.id[:12], Image=row.image, Command=f'"{command}"',
        CreatedAt=_go_time(created), RunningFor=_ago(created), Ports=row.ports, State=row.state,
        Status=row.status, Names=row.name, Labels=_labels_text(row.labels),
        Label=lambda key: row.labels.get(key, ""), Mounts=",".join(row.mounts), Networks=row.network,
        Size="0B",
    )


IMAGE_HEADERS = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
                 "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                 "Containers": "CONTAINERS", "VirtualSize": "SIZE"}
IMAGE_TABLE = "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"


def image_record(row, no_trunc: bool, size: str) -> Record:
    return Record(
        ID=row.id if no_trunc else row.id[:12], Repository=row.name, Tag=row.tag, Digest="<none>",
        CreatedSince=_ago(row.created), CreatedAt=_go_time(row.created), Size=size, VirtualSize=size,
        Containers="N/A",
    )


NETWORK_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
                   "Internal": "INTERNAL", "Labels": "LABELS", "Label": "LABEL", "CreatedAt": "CREATED AT",
                   "Subnet": "SUBNET", "Gateway": "GATEWAY"}
NETWORK_TABLE = "{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"


def network_record(row: dict, no_trunc: bool) -> Record:
    labels = row.get("labels") or {}
    return Record(
        ID=row["id"] if no_trunc else row["id"][:12], Name=row["name"], Driver="bridge", Scope="local",
        IPv6="false", Internal="false", Labels=_labels_text(labels), Label=lambda key: labels.get(key, ""),
        CreatedAt=_go_time(_iso(row["created"])), Subnet=row["subnet"], Gateway=row["gateway"],
    )


VOLUME_HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
                  "Labels": "LABELS", "Label": "LABEL", "CreatedAt": "CREATED AT", "Size": "SIZE",
                  "Links": "LINKS", "Availability": "AVAILABILITY", "Group": "GROUP"}
VOLUME_TABLE = "{{.Driver}}\t{{.Name}}"


def volume_record(vol, links: int) -> Record:
    return Record(
        Name=vol.name, Driver="local", Scope="local", Mountpoint=vol.mountpoint,
        Labels=_labels_text(vol.labels),
        Label=lambda key: vol.labels.get(key, ""), CreatedAt=_go_time(_iso(vol.created)), Size="N/A",
        Links=str(links), Availability="N/A", Group="N/A",
    )


def print_rows(fmt: str, records: list[Record], headers: dict[str, str], default_table: str) -> None:
    click.echo(render(fmt, records, headers, default_table), nl=False)


def print_inspect(fmt: str | None, docs: list) -> None:
    """An inspect command's output: the template per object with ``-f``, else JSON."""
    if fmt:
        print_each(fmt, docs)
    else:
        from .output import print_json

        print_json(docs)


def print_each(fmt: str, values: list) -> None:
    """``inspect -f``: the template once per object, each result on its own line."""
    template = parse(fmt)
    click.echo("".join(safe(template.execute(v)) + "\n" for v in values), nl=False)
