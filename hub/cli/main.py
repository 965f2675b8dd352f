"""The `hub` command. Errors are one line on stderr and a non-zero exit, never a traceback.

Its commands come through the plugin hooks, the hub's own (hub.plugins.BUILTIN_CLI: one module per
group under hub/cli/) exactly like a plugin's: register_cli_groups, where a name already taken is
refused, and the older register_commands, kept for plugins written against it.
"""
from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import click

from hub.cli.common import Failure

if TYPE_CHECKING:
    from hub.plugins import Plugins, Registration

__all__ = ["Failure", "cli", "main"]


class _Hub(click.Group):
    """The `hub` group: every argument of every command is checked for text here, once; its
    commands are collected from the hooks on first use (so importing `cli` stays cheap)."""

    _loaded = False

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from hub.text import find_surrogate

        # Bytes that are not UTF-8 in argv reach Python as lone surrogates (surrogateescape);
        # stored, they break every listing that holds them.
        for i, arg in enumerate(args, 1):
            if find_surrogate(arg) is not None:
                try:  # the bytes as given, e.g. Nguy\xe1n
                    shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                except UnicodeEncodeError:
                    shown = arg.encode("utf-8", "backslashreplace").decode("ascii")
                raise Failure(f"argument {i} ({shown}) is not valid UTF-8 text: check the terminal's or the "
                              f"script's encoding")
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.load_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self.load_commands()
        return super().get_command(ctx, cmd_name)

    def load_commands(self, plugins: Plugins | None = None) -> None:
        """Add what the hub and the plugins register, once."""
        if self._loaded:
            return
        self._loaded = True
        from hub.plugins import get_plugins

        plugins = plugins or get_plugins()
        for reg in plugins.cli_groups():
            self._add(plugins, reg)
        self._add_older(plugins)

    def _add(self, plugins: Plugins, reg: Registration) -> None:
        command = reg.item
        if not isinstance(command, click.Command) or not command.name:
            _refuse(plugins, f"plugin {reg.plugin} registered {command!r}, not a named click command; ignored")
        elif command.name in self.commands:
            _refuse(plugins, f"plugin {reg.plugin}: `hub {command.name}` is already taken; its command is ignored")
        else:
            self.add_command(command)

    def _add_older(self, plugins: Plugins) -> None:
        """register_commands(cli): the plugin adds to the group itself; whatever it replaces is put back."""
        for impl in plugins.pm.hook.register_commands.get_hookimpls():
            before = dict(self.commands)
            try:
                impl.function(**{"cli": self} if "cli" in impl.argnames else {})
            except Exception as exc:  # a broken plugin must not take the CLI down with it
                click.echo(f"hub: warning: plugin commands not loaded: {exc}", err=True)
            for name, command in before.items():
                if self.commands.get(name) is not command:
                    self.commands[name] = command
                    _refuse(plugins, f"plugin {impl.plugin_name}: `hub {name}` is already taken; "
                                     f"its command is ignored")


def _refuse(plugins: Plugins, problem: str) -> None:
    plugins.report(problem)
    click.echo(f"hub: warning: {problem}", err=True)


@click.group(cls=_Hub)
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
def cli(verbose: bool) -> None:
    """Integration hub for the grassroots information system (hệ thống thông tin nguồn)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
