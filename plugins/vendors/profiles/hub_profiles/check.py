"""`hub-profile-check FILE...` and `hub profiles check|list`: validate profiles before a hub
loads them. Findings are one line each, `file:line: field: message`, on standard output (like
a linter's); the exit status is 1 when any profile is wrong."""
from __future__ import annotations

from pathlib import Path

import click

from hub_profiles.loader import LoadResult, load_profiles, taken_names
from hub_profiles.validate import load_file
from hub_profiles.yamlsrc import ProfileError


def check_files(files: list[Path]) -> LoadResult:
    """Validate the files as given (errors name them as typed), including names two of them or
    an installed plugin share."""
    result = LoadResult()
    taken = taken_names()
    seen: dict[str, str] = {}
    for f in files:
        profile, errors = load_file(f, str(f))
        result.errors.extend(errors)
        if profile is None:
            continue
        if profile.name in taken:
            result.errors.append(ProfileError(str(f), profile.name_line, "name", f"{profile.name} is the vendor "
                                              f"name of the installed plugin {taken[profile.name]}"))
        elif profile.name in seen:
            result.errors.append(ProfileError(str(f), profile.name_line, "name",
                                              f"{profile.name} is already the name of {seen[profile.name]}"))
        else:
            seen[profile.name] = str(f)
            result.profiles.append(profile)
    return result


@click.command("check")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-q", "--quiet", is_flag=True, help="Print only the problems.")
def check_command(files: tuple[Path, ...], quiet: bool) -> None:
    """Validate profile FILEs; without FILEs, every profile the hub would load (the built-in
    ones and those on HUB_PROFILE_PATH)."""
    result = check_files(list(files)) if files else load_profiles()
    if not quiet:
        for p in result.profiles:
            click.echo(f"{p.source}: ok: {p.name} ({p.driver}: {', '.join(p.commands)})")
        for old, new in result.replaced:
            click.echo(f"{new.source}: replaces the built-in profile {old.name}")
    for err in result.errors:
        click.echo(str(err))
    if result.errors:
        raise SystemExit(1)


@click.command("list")
def list_command() -> None:
    """Show the profiles the hub loads, each with its vendor name, driver and file."""
    result = load_profiles()
    for p in sorted(result.profiles, key=lambda p: p.name):
        click.echo(f"{p.name:<24} {p.driver:<10} {p.version:<8} {p.source}")
    if result.errors:
        click.echo(f"{len(result.errors)} problem(s) skipped profiles; run `hub profiles check`", err=True)


@click.group("profiles")
def profiles_group() -> None:
    """Declarative device profiles (hub-vendor-profiles)."""


profiles_group.add_command(check_command)
profiles_group.add_command(list_command)


def main() -> None:
    check_command.main(prog_name="hub-profile-check")
