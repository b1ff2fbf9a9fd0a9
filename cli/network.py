"""lg network create|ls|inspect|rm|prune, and lg port."""

from __future__ import annotations

import click

from layergit.porcelain import container_views, networks

from .output import print_json, repo_from, table


@click.group("network")
def network_cmd():
    """Manage container networks (bridges with their own subnets)."""


@network_cmd.command("create")
@click.option("--subnet", metavar="CIDR", help="e.g. 10.90.5.0/24 (default: a free private /24).")
@click.option("--gateway", metavar="IP", help="Gateway address (default: the subnet's first).")
@click.option("-l", "--label", multiple=True, metavar="KEY[=VALUE]", help="Set a label (ls -f label=).")
@click.option("-d", "--driver", type=click.Choice(["bridge"]), default="bridge", help="Only bridge.")
@click.argument("name")
@click.pass_context
def create_cmd(ctx, subnet, gateway, label, driver, name):
    """Create a user-defined network: its containers find each other by name."""
    from layergit.porcelain.runopts import labels

    click.echo(networks.create(repo_from(ctx), name, subnet, gateway, labels(list(label))).id)


@network_cmd.command("ls")
@click.option("--json", "as_json", is_flag=True)
@click.option("-q", "--quiet", is_flag=True, help="Only ids.")
@click.option("-f", "--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="id, name, label, driver, type (custom|builtin), scope.")
@click.option("--format", "fmt", metavar="TEMPLATE", help="Go template ({{.Name}}), table ..., or json.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate ids.")
@click.pass_context
def ls_cmd(ctx, as_json, quiet, filters, fmt, no_trunc):
    """List networks."""
    from layergit.porcelain import filters as filtering

    rows = filtering.network_ls(repo_from(ctx), filters)
    if quiet:
        click.echo("".join(f"{r['id'] if no_trunc else r['id'][:12]}\n" for r in rows), nl=False)
    elif fmt and not as_json:
        from .formats import NETWORK_HEADERS, NETWORK_TABLE, network_record, print_rows

        print_rows(fmt, [network_record(r, no_trunc) for r in rows], NETWORK_HEADERS, NETWORK_TABLE)
    elif as_json:
        print_json(rows)
    else:
        table(["NETWORK ID", "NAME", "SUBNET", "GATEWAY", "BRIDGE", "CONTAINERS"],
              [[r["id"][:12], r["name"], r["subnet"], r["gateway"], r["bridge"], str(r["containers"])]
               for r in rows])


@network_cmd.command("inspect")
@click.option("-f", "--format", "fmt", metavar="TEMPLATE", help="Go template, e.g. '{{.IPAM.Config}}'.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect_cmd(ctx, fmt, names):
    """Details of networks (JSON, Docker's field names)."""
    repo = repo_from(ctx)
    from .formats import print_inspect

    print_inspect(fmt, [networks.inspect(repo, n) for n in names])


@network_cmd.command("rm")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm_cmd(ctx, names):
    """Remove networks (they must have no containers)."""
    for name in networks.rm(repo_from(ctx), list(names)):
        click.echo(name)


@network_cmd.command("prune")
@click.pass_context
def prune_cmd(ctx):
    """Remove unused networks and leftovers of crashed containers."""
    for name in networks.prune(repo_from(ctx)):
        click.echo(name)


@click.command("port")
@click.option("--json", "as_json", is_flag=True)
@click.argument("ref", metavar="CONTAINER")
@click.pass_context
def port_cmd(ctx, as_json, ref):
    """List a container's published ports."""
    ports = container_views.port(repo_from(ctx), ref)
    if as_json:
        print_json([p.to_docker() for p in ports])
        return
    for p in ports:
        click.echo(f"{p.key} -> {p.bind_ip}:{p.host_port}")
