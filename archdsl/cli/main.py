"""The `archdsl` command: the typer app, with each command group registered from its own module."""
from __future__ import annotations

import sys

import typer

from . import compile as compile_commands
from . import export as export_commands
from . import patch as patch_commands
from . import roadmap as roadmap_commands
from . import spaces as spaces_commands
from . import sweep as sweep_commands
from . import train as train_commands
from .common import err

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="archdsl: describe a conv net in .arch, check it, count it, build it.")
for group in (compile_commands, roadmap_commands, train_commands, patch_commands, export_commands,
              spaces_commands, sweep_commands):
    group.register(app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except BrokenPipeError:  # the reader went away (`| head`): nothing more to say
        sys.exit(1)
    except OSError as e:  # standard output itself failed (a full disk behind `> file`)
        try:
            sys.stderr.write(f"error: cannot write the output: {e.strerror or e}\n")
        except OSError:
            pass
        sys.exit(1)
