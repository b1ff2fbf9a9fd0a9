"""lg system boot and lg system install-service: containers that come back after a reboot."""

from __future__ import annotations

import click

from .output import repo_from


@click.command("boot")
@click.pass_context
def boot_cmd(ctx):
    """Start every container whose restart policy asks for it (the boot entry point)."""
    from layergit.errors import LgError
    from layergit.porcelain import services
    from layergit.text import printable

    failed = 0
    for booted in services.boot(repo_from(ctx)):
        if booted.error:
            failed += 1
            click.echo(f"lg: {booted.name}: {printable(booted.error)}", err=True)
        else:
            click.echo(booted.name)
    if failed:
        raise LgError(f"{failed} container{'s' if failed > 1 else ''} did not start")


@click.command("install-service")
@click.option("--user", is_flag=True, help="For your user's systemd instance (default: the system's).")
@click.option("--unit-dir", type=click.Path(file_okay=False),
              help="Write the unit here (default: /etc/systemd/system or ~/.config/systemd/user).")
@click.option("--lg", "lg_path", type=click.Path(dir_okay=False), help="The lg to run (default: lg on PATH).")
@click.option("--no-enable", is_flag=True, help="Write the unit only.")
@click.pass_context
def install_service_cmd(ctx, user, unit_dir, lg_path, no_enable):
    """Install the systemd unit that runs lg system boot for this root at boot."""
    import os
    import shutil

    from layergit.errors import UsageError
    from layergit.porcelain import services
    from layergit.root import default_root

    lg = lg_path or shutil.which("lg")
    if not lg:
        raise UsageError("lg is not on PATH: name it with --lg PATH")
    done = services.install_service(repo_from(ctx), os.path.abspath(lg), user, unit_dir, default_root(),
                                    not no_enable)
    click.echo(done.path)
    if done.note:
        click.echo(done.note, err=True)
