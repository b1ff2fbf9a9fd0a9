"""lg volume create|ls|inspect|rm|prune."""

from __future__ import annotations

import click

from layergit.porcelain import volumes

from .output import human_size, print_json, repo_from, table


@click.group("volume")
def volume_cmd():
    """Manage volumes: directories containers mount, kept when they are removed."""


@volume_cmd.command("create")
@click.option("-l", "--label", multiple=True, metavar="KEY[=VALUE]", help="Set a label (ls -f label=).")
@click.option("-d", "--driver", type=click.Choice(["local"]), default="local", help="Only local.")
@click.argument("name", required=False)
@click.pass_context
def create_cmd(ctx, label, driver, name):
    """Create a volume (a random name without NAME); prints its name."""
    from layergit.porcelain.runopts import labels

    click.echo(volumes.create(repo_from(ctx), name, labels(list(label))).name)


@volume_cmd.command("ls")
@click.option("--json", "as_json", is_flag=True)
@click.option("-q", "--quiet", is_flag=True, help="Only names.")
@click.option("-f", "--filter", "filters", multiple=True, metavar="KEY=VALUE",
              help="dangling (true|false), driver, label, name.")
@click.option("--format", "fmt", metavar="TEMPLATE", help="Go template ({{.Name}}), table ..., or json.")
@click.pass_context
def ls_cmd(ctx, as_json, quiet, filters, fmt):
    """List volumes."""
    from layergit.porcelain import filters as filtering
    from layergit.text import quoted

    repo = repo_from(ctx)
    rows = filtering.volume_ls(repo, filters)
    if quiet:
        click.echo("".join(f"{quoted(v.name)}\n" for v in rows), nl=False)
    elif fmt and not as_json:
        from .formats import VOLUME_HEADERS, VOLUME_TABLE, print_rows, volume_record

        using = volumes.users(repo)
        print_rows(fmt, [volume_record(v, len(using.get(v.name, []))) for v in rows], VOLUME_HEADERS,
                   VOLUME_TABLE)
    elif as_json:
        print_json([volumes.inspect(repo, v.name) for v in rows])
    else:
        table(["DRIVER", "VOLUME NAME"], [["local", v.name] for v in rows])


@volume_cmd.command("inspect")
@click.option("-f", "--format", "fmt", metavar="TEMPLATE", help="Go template, e.g. '{{.Mountpoint}}'.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect_cmd(ctx, fmt, names):
    """Details of volumes (JSON, Docker's field names)."""
    repo = repo_from(ctx)
    from .formats import print_inspect

    print_inspect(fmt, [volumes.inspect(repo, n) for n in names])


@volume_cmd.command("rm")
@click.option("-f", "--force", is_flag=True, help="A missing volume is not an error.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm_cmd(ctx, force, names):
    """Remove volumes (refused while a container, running or not, uses one)."""
    for name in volumes.remove(repo_from(ctx), list(names), force):
        click.echo(name)


@volume_cmd.command("prune")
@click.option("-a", "--all", "all_", is_flag=True, help="Named volumes too, not only anonymous ones.")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.option("--filter", "filters", multiple=True, metavar="KEY=VALUE", help="label, name, ...")
@click.pass_context
def prune_cmd(ctx, all_, force, filters):
    """Remove volumes no container uses (anonymous ones, or all with -a)."""
    if not force and not click.confirm("WARNING! This will remove anonymous local volumes not used by at"
                                       " least one container.\nAre you sure you want to continue?"):
        return
    from layergit.porcelain import filters as filtering

    repo = repo_from(ctx)
    def select(vols, using):
        return filtering.volumes(repo, vols, filters, using)

    removed, freed = volumes.prune(repo, all_, select)
    if removed:
        click.echo("Deleted Volumes:\n" + "".join(f"{name}\n" for name in removed))
    click.echo(f"Total reclaimed space: {human_size(freed)}")
