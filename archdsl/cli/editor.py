"""`archdsl lsp`: the language server, over stdio (see docs/editors.md)."""
# No `from __future__ import annotations`: typer reads the real annotations of the commands.

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("lsp")
    def lsp_cmd(
        stdio: Annotated[bool, typer.Option("--stdio", help="Talk LSP over stdin/stdout (the only transport; "
                                            "accepted because editors pass it).")] = True,
    ) -> None:
        """Run the language server for .arch files: diagnostics, hover, inlay hints, completion,
        go to definition, formatting. An editor starts it; see docs/editors.md."""
        from ..lsp.server import main

        main()
