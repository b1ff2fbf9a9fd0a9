"""lg compose: compose-spec files on lg's own run, network and volume code."""

from __future__ import annotations

import re
import sys

import click

from .output import print_json


@click.group("compose")
@click.option("-f", "--file", "files", multiple=True, metavar="FILE",
              help="The compose file (default: compose.yaml, compose.yml, docker-compose.yaml"
                   " or docker-compose.yml here).")
@click.option("-p", "--project-name", "name", metavar="NAME",
              help="Project name (default: the directory's name).")
@click.option("--project-directory", metavar="DIR", help="Where .env and relative paths are read from"
              " (default: the file's directory).")
@click.option("--env-file", metavar="FILE", help="Variables for interpolation (default: the project's .env).")
@click.pass_context
def compose_cmd(ctx, files, name, project_directory, env_file):
    """Run the services of a Compose file (compose-spec) as lg containers."""
    from layergit.compose.project import ProjectOptions

    ctx.obj["compose"] = ProjectOptions(tuple(files), name, project_directory, env_file)


def _project(ctx):
    """The project, its warnings said once on stderr."""
    from layergit.compose.project import open_project
    from layergit.text import printable

    project = open_project(ctx.obj["compose"])
    for warning in project.warnings:
        click.echo(f"lg: warning: {printable(warning)}", err=True)
    return project


@compose_cmd.command("config")
@click.option("--services", is_flag=True, help="Print the services' names, one a line.")
@click.option("--volumes", is_flag=True, help="Print the volumes' names, one a line.")
@click.option("-q", "--quiet", is_flag=True, help="Only check the file; print nothing.")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
@click.pass_context
def config_cmd(ctx, services, volumes, quiet, fmt):
    """Check the file and print it normalised: variables replaced, short forms spelled out."""
    from layergit.compose.model import document

    project = _project(ctx)
    if quiet:
        return
    if services or volumes:
        for name in (project.services if services else project.volumes):
            click.echo(name)
        return
    doc = document(project)
    if fmt == "json":
        print_json(doc)
        return
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.representer.add_representer(str, _quoted_if_ambiguous)
    yaml.dump(doc, sys.stdout)


_AMBIGUOUS = re.compile(r"(?i)y|yes|n|no|true|false|on|off|null|~|[-+]?[0-9_:.]+(e[-+]?[0-9]+)?|")


def _quoted_if_ambiguous(representer, text: str):
    """Strings a YAML 1.1 reader (PyYAML, older tools) would take for a boolean, a null or
    a number are printed quoted, as docker compose config prints ``restart: "no"``."""
    style = '"' if _AMBIGUOUS.fullmatch(text) else None
    return representer.represent_scalar("tag:yaml.org,2002:str", text, style=style)
