"""The `archdsl` command: the typer app, with each command group registered from its own module,
and what every command shares at the top: `--version`, shell completion, help that reads as
prose, and a reader that goes away (`| head`) ending the command quietly."""
from __future__ import annotations

import inspect
import os
import sys
from typing import Annotated

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from . import catalog as catalog_commands
from . import compile as compile_commands
from . import data as data_commands
from . import editor as editor_commands
from . import eval as eval_commands
from . import export as export_commands
from . import patch as patch_commands
from . import roadmap as roadmap_commands
from . import spaces as spaces_commands
from . import sweep as sweep_commands
from . import train as train_commands
from .common import err


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("archdsl")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _reader_gone() -> None:
    """Standard output's reader has closed the pipe: send what is still buffered, and
    everything after, to /dev/null, so that nothing fails again at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor behind stdout (a test's capture)
        pass


class _Group(TyperGroup):
    """The top-level group: a closed pipe ends a command with status 0, as ripgrep does
    (click would print nothing and exit 1, which breaks `set -o pipefail` scripts)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _reader_gone()
            raise typer.Exit(0) from None

    def get_help_option(self, ctx):
        return _quiet_help(super().get_help_option(ctx))


def _show_version(value: bool) -> None:
    if value:
        print(f"archdsl {version()}")
        raise typer.Exit()


app = typer.Typer(cls=_Group, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="archdsl: describe a conv net in .arch, check it, count it, build it.")


@app.callback()
def _root(_version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                                 help="Print archdsl's version and exit.")] = False) -> None:
    pass


for group in (compile_commands, catalog_commands, roadmap_commands, train_commands, eval_commands, data_commands,
              patch_commands, export_commands, editor_commands, spaces_commands, sweep_commands):
    group.register(app)


# ---------------------------------------------------------------- help that reads as prose
class _QuietOption(TyperOption):
    """An option whose help shows no `<str>`/`<bool>` type column: the help text says what
    the value is; a metavar, where a command sets one, is still shown."""

    def display_type_rich(self, ctx) -> str | None:
        return self.metavar

    def _get_number_range_help_str(self) -> str | None:  # `[0<=x<=9223372036854775807]`
        return None


class _QuietArgument(TyperArgument):
    """An argument shown as `SPEC` (`[DIR]` when optional), with no type column."""

    def display_type_rich(self, ctx) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = (self.metavar or self.name or "").upper() + ("..." if self.nargs != 1 else "")
        return name if self.required else f"[{name}]"

    def _rich_display_name(self) -> str:
        return (self.metavar or self.name or "").upper() + ("..." if self.nargs != 1 else "")


def _quiet_help(option):
    """A command's `--help` option (click makes it on first use), quiet too."""
    if type(option) is TyperOption:
        option.__class__ = _QuietOption
    return option


class _Command(TyperCommand):
    def get_help_option(self, ctx):
        return _quiet_help(super().get_help_option(ctx))


def _prose(text: str | None) -> str | None:
    """Docstring paragraphs as flowing text: a single line break inside a paragraph is a
    space (typer's rich help keeps it, breaking lines mid-sentence); indented lines
    (examples) keep theirs."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") or any(line.startswith(" ") for line in p.splitlines())
                       else " ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def _tidy(command):
    command.help = _prose(command.help)
    if type(command) is TyperCommand:
        command.__class__ = _Command
    for param in command.params:
        if type(param) is TyperOption:
            param.__class__ = _QuietOption
        elif type(param) is TyperArgument:
            param.__class__ = _QuietArgument
    for sub in getattr(command, "commands", {}).values():
        _tidy(sub)
    return command


def command():
    """The command behind `archdsl` (typer's click group), with its help tidied."""
    return _tidy(typer.main.get_command(app))


def main() -> None:
    code: int | str | None = 0
    try:
        try:
            command()(prog_name="archdsl")
        except SystemExit as e:
            code = e.code
        if not sys.stdout.closed:  # (the language server closes it on exit)
            sys.stdout.flush()  # a reader gone before the last buffered line shows here
    except KeyboardInterrupt:
        err.print("interrupted")
        code = 130
    except BrokenPipeError:  # the reader went away (`| head`): the command ends quietly
        _reader_gone()
    except OSError as e:  # standard output itself failed (a full disk behind `> file`)
        try:
            sys.stderr.write(f"error: cannot write the output: {e.strerror or e}\n")
        except OSError:
            pass
        code = 1
    sys.exit(code)
