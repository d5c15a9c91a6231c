"""The command line: `main` holds the typer app and registers one module per command group
(`compile`: check, compile; `catalog`: list; `roadmap`: diff, roadmap; `train`: train,
train-roadmap; `patch`: fmt, flatten, change, apply, ablate; `export`: export, draw; `editor`:
lsp), each importing only `common` of its siblings.

May import every room of archdsl; nothing imports it."""
from .main import app, main

__all__ = ["app", "main"]
