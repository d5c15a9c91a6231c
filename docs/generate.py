"""Generate the docs pages that are derived from the code, so they cannot go stale:

- docs/cli.md: every command, argument and option, read from the typer app itself;
- docs/index.md: the site's home page, which is the README with links made site-relative.

    python docs/generate.py          # rewrite both
    python docs/generate.py --check  # exit 1 if either is stale (the test suite runs this)
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent


def _flags(param) -> str:
    if param.param_type_name == "argument":
        return f"`{param.name.upper()}`" + (" ..." if param.nargs == -1 else "")
    names = ", ".join(f"`{o}`" for o in param.opts + param.secondary_opts)
    if not getattr(param, "is_flag", False) and param.metavar:
        names += f" {param.metavar}"
    return names


def _help(param) -> str:
    text = " ".join((getattr(param, "help", None) or "").split())
    default = getattr(param, "default", None)
    if param.param_type_name == "option" and default not in (None, False, (), []) \
            and not getattr(param, "is_flag", False) and not callable(default):
        text += f" (default: `{default}`)"
    return text.replace("|", "\\|")


def cli_reference() -> str:
    import typer

    from archdsl.cli.main import app

    group = typer.main.get_command(app)
    out = ["# CLI reference", "",
           "Generated from the commands themselves by `python docs/generate.py`; "
           "`archdsl COMMAND --help` prints the same.", ""]
    def document(name: str, cmd) -> None:
        if getattr(cmd, "hidden", False):
            return
        out.extend([f"## `archdsl {name}`", "", " ".join((cmd.help or "").split()), ""])
        params = [p for p in cmd.params if p.name != "help" and not getattr(p, "hidden", False)]
        if params:
            out.extend(["| argument or option | meaning |", "|---|---|"])
            out.extend(f"| {_flags(p)} | {_help(p)} |" for p in params)
            out.append("")
        for sub in getattr(cmd, "commands", {}):  # a command group (`sweep run`, `sweep report`)
            document(f"{name} {sub}", cmd.commands[sub])

    for name in group.list_commands(None):  # type: ignore[arg-type]
        document(name, group.commands[name])
    return "\n".join(out).rstrip() + "\n"


def index_page() -> str:
    text = (ROOT / "README.md").read_text()
    return re.sub(r"\]\(docs/", "](", text)  # README links into docs/ become site links


PAGES = {"cli.md": cli_reference, "index.md": index_page}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, make in PAGES.items():
        path, text = DOCS / name, make()
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"stale: {', '.join(stale)}; run `python docs/generate.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
