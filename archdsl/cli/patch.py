"""`archdsl fmt`, `flatten`, `apply` and `ablate`: specs written by the printer, changes as patches."""
# No `from __future__ import annotations`: typer reads the real annotations of the commands below.

import difflib
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..lang.errors import ArchError, display_path
from .common import SetOpt, SpecArg, complete_spec, err, fail, failed, overrides, usage

OutOpt = Annotated[Optional[Path], typer.Option("-o", "--output", help="Write the spec to this file instead of "
                                                "printing it.", dir_okay=False)]


def _write(text: str, path: Optional[Path]) -> None:
    """To standard output (no path, or `-`), else atomically: the old file stays whole on a full disk."""
    from ..atomic import write_text

    if path is None or str(path) == "-":
        sys.stdout.write(text)
        return
    try:
        write_text(path, text)
    except OSError as e:
        failed(f"cannot write `{path}`: {e.strerror or e}")
    err.print(f"wrote {path}", markup=False)


def _changed_since(path: Path, spec_text: str, parsed_from) -> bool:
    """Whether the file on disk is no longer the text that was formatted: the spec was parsed
    from one read and `spec_text` is a second; a save landing between or after them shows as a
    difference between them or from the file now, and the formatted text would overwrite it."""
    from ..lang.printer import format_spec
    from ..lang.resolve import read_spec

    try:
        now = path.read_text()
        return now != spec_text or format_spec(read_spec(path)) != format_spec(parsed_from)
    except (OSError, UnicodeDecodeError, ArchError):
        return True


def _extends_reaches(base, beside: Path) -> bool:
    """Whether `extends BASE` in a spec written in `beside` resolves to exactly `base` (a base
    loaded from a file of another name, or changed by --set, resolves to something else)."""
    from ..api import as_network
    from ..lang.network import canonical
    from ..lang.specpath import find_spec

    try:
        found = as_network(str(find_spec(base.name, beside=beside)))
    except ArchError:
        return False
    return canonical(found) == canonical(base)


def register(app: typer.Typer) -> None:
    @app.command("fmt")
    def fmt_cmd(
        specs: Annotated[list[str], typer.Argument(help="Spec files or shipped names.", autocompletion=complete_spec)],
        check: Annotated[bool, typer.Option("--check", help="Print nothing but what is not formatted (as a "
                                            "diff) and exit 1 if any file is not.")] = False,
        write: Annotated[bool, typer.Option("--write", "-w", help="Rewrite the files in place.")] = False,
    ) -> None:
        """Print a spec in canonical form: sections in order, aligned, comments kept.

        `archdsl fmt --check specs/*.arch` for CI; `archdsl fmt -w my.arch` to rewrite."""
        from ..lang.printer import format_spec
        from ..lang.resolve import read_spec
        from ..lang.specpath import find_spec

        if check and write:
            usage("--check and --write exclude each other")
        unformatted = []
        for name in specs:
            try:
                path = find_spec(name)
                spec = read_spec(path)
                text = format_spec(spec)
            except ArchError as e:
                fail(e)
            try:
                original = path.read_text()
            except (OSError, UnicodeDecodeError) as e:
                failed(f"cannot read `{display_path(str(path))}`: {getattr(e, 'strerror', None) or e}")
            shown = display_path(str(path))
            if check:
                if text != original:
                    unformatted.append(shown)
                    sys.stdout.writelines(difflib.unified_diff(
                        original.splitlines(True), text.splitlines(True), f"{shown} (as written)",
                        f"{shown} (formatted)"))
            elif write:
                if text != original:
                    if _changed_since(path, spec_text=original, parsed_from=spec):
                        failed(f"`{shown}` changed while it was being formatted (an editor saved it?); "
                               "not written: run `archdsl fmt -w` again")
                    _write(text, path)
            else:
                sys.stdout.write(text)
        if check:
            if unformatted:
                err.print(f"{len(unformatted)} of {len(specs)} not formatted: " + ", ".join(unformatted)
                          + "; `archdsl fmt -w FILE` rewrites", markup=False)
                raise typer.Exit(1)
            err.print(f"{len(specs)} formatted", markup=False)

    @app.command("flatten")
    def flatten_cmd(spec: SpecArg, set_: SetOpt = None, output: OutOpt = None) -> None:
        """Print the fully resolved network as one self-contained spec: no `extends`, every
        block, the `set` lines and `--set` overrides applied, the recipe written out."""
        from ..api import check
        from ..lang.flatten import flatten
        from ..lang.printer import format_spec

        try:
            net, _ = check(spec, **overrides(set_))  # a spec that does not check is not written
            text = format_spec(flatten(net), layout=False)
        except ArchError as e:
            fail(e)
        _write(text, output)

    @app.command("change")
    def change_cmd(step: SpecArg, json_: Annotated[bool, typer.Option("--json", help="Print the change as "
                                                                      "JSON (`archdsl.Patch`).")] = False) -> None:
        """The change a step makes to the spec it extends, as edits `archdsl apply` can make elsewhere."""
        from ..diff.change import change

        try:
            p = change(step)
        except ArchError as e:
            fail(e)
        sys.stdout.write(p.to_json() + "\n" if json_ else str(p))

    @app.command("apply")
    def apply_cmd(
        step: Annotated[str, typer.Argument(help="A step spec whose change to apply (or a change saved by "
                                            "`archdsl change --json` as a .json file).")],
        onto: Annotated[str, typer.Option("--onto", help="The network to apply it to (a spec name or path).")],
        output: OutOpt = None,
        name: Annotated[Optional[str], typer.Option("--name", help="The new network's name (default: the "
                                                    "output file's name, else STEP_on_BASE).")] = None,
        carry: Annotated[bool, typer.Option("--carry", help="Carry the step's depths and widths as relative "
                                            "intent: a stage it left follows BASE, one it changed scales by "
                                            "the step's ratio.")] = False,
    ) -> None:
        """Apply a step's change to another network and print the result as a spec:
        `extends BASE` plus the change. `archdsl apply step09 --onto step00` is ResNet-50 with GELU.
        A warning says where the step's absolute depths or widths overwrite different ones of BASE."""
        from ..api import as_network
        from ..diff.change import apply, carry_notes, change
        from ..lang.errors import render_warning
        from ..lang.patch import Patch, PatchError, child_spec
        from ..lang.printer import format_spec

        try:
            if step.endswith(".json"):
                try:
                    patch = Patch.from_json(Path(step).read_text())
                except OSError as e:
                    raise PatchError(f"cannot read `{step}`: {e.strerror or e}", code="E905") from None
                except UnicodeDecodeError:
                    raise PatchError(f"`{step}` is not text (a change is the JSON `archdsl change --json` "
                                     "writes)", code="E905") from None
            else:
                patch = change(step)
            base = as_network(onto)
            result = apply(patch, base, carry=carry)
        except ArchError as e:
            fail(e)
        for e, note in carry_notes(patch, base):
            hint = ("`--carry` applies it as the same change per stage" if not carry else
                    f"applied as the same change per stage (--carry): {', '.join(map(str, result.depths))} deep, "
                    f"{', '.join(map(str, result.widths))} wide")
            sys.stderr.write(render_warning(note, e.span, hint) + "\n")  # plain: never re-wrapped
        short = lambda n: n.split("_")[0] if n.startswith("step") else n  # noqa: E731
        new_name = name if name is not None else (output.stem if output else f"{short(patch.step)}_on_{short(base.name)}")
        if not new_name.isidentifier():
            usage(f"`{new_name}` is not a network name (letters, digits, `_`); pass --name")
        note = (f"{patch.step}'s change applied to {base.name} (`archdsl apply`):",
                *(f"  {e.describe()}" for e in patch.edits),
                *([f"  carried (--carry): depths {','.join(map(str, result.depths))}, widths "
                   f"{','.join(map(str, result.widths))}"] if carry and (result.depths, result.widths) !=
                  (base.depths, base.widths) else []))
        if _extends_reaches(base, output.parent if output else Path.cwd()):
            spec = child_spec(result, base, new_name, note)
        else:  # `extends NAME` would find another network there: write the whole network
            from ..lang.flatten import flatten

            note += (f"(self-contained: `extends {base.name}` would not find this base from "
                     f"{display_path(str(output.parent)) if output else 'here'})",)
            spec = flatten(result, new_name).model_copy(update={"comments": child_spec(
                result, base, new_name, note).comments})
        _write(format_spec(spec, layout=False), output)

    @app.command("ablate")
    def ablate_cmd(
        directory: Annotated[Optional[Path], typer.Argument(help="A directory of step specs (default: the "
                                                            "shipped specs/roadmap).", show_default=False)] = None,
        mode: Annotated[str, typer.Option("--mode", help="leave-one-out: the end of the chain without each "
                                          "step's change; one-at-a-time: each change alone on the "
                                          "root.")] = "leave-one-out",
        json_: Annotated[bool, typer.Option("--json", help="Print JSON (`archdsl.roadmap.ablate.Ablation`).")]
            = False,
        out_dir: Annotated[Optional[Path], typer.Option("--out", help="Write each variant's spec here, so "
                                                        "`archdsl train-roadmap DIR` trains them all.",
                                                        file_okay=False)] = None,
        plot: Annotated[Optional[Path], typer.Option("--plot", help="Also draw the ablation beside the chain "
                                                     "into this PNG file.", dir_okay=False)] = None,
    ) -> None:
        """Ablations of a chain: ConvNeXt-T without each step's change (leave-one-out), or each
        change alone on ResNet-50 (one-at-a-time), with params, GMACs and Δ."""
        import io

        from rich.console import Console

        from ..roadmap.ablate import MODES, ablate, ablation_table

        if mode not in MODES:
            usage(f"--mode takes {' or '.join(MODES)}, not `{mode}`")
        if plot is not None and plot.suffix.lower() != ".png":
            usage(f"--plot writes a PNG; name the file `{plot.with_suffix('.png')}`")
        try:
            ab = ablate(directory, mode=mode, out=out_dir)  # type: ignore[arg-type]
        except ArchError as e:
            fail(e)
        except OSError as e:
            failed(f"cannot write into `{out_dir}`: {e.strerror or e}")
        if plot is not None:
            from ..roadmap.plot import plot_ablation

            try:
                plot_ablation(ab, plot)
            except OSError as e:
                failed(f"cannot write `{plot}`: {e.strerror or e}")
            err.print(f"wrote {plot}", markup=False)
        if json_:
            print(ab.model_dump_json(indent=2))
            return
        table = ablation_table(ab)
        what = "without" if mode == "leave-one-out" else "with only"
        title = f"{mode}: {ab.reference if mode == 'leave-one-out' else ab.root} {what} each step's change"
        console = out_console = Console(highlight=False)
        if not out_console.is_terminal:  # piped: plain, wide enough not to wrap
            buf = io.StringIO()
            console = Console(file=buf, width=240, color_system=None, highlight=False)
        console.print(title, markup=False)
        console.print(table)
        if out_dir is not None:
            console.print(f"variant specs in {out_dir}; train them: archdsl train-roadmap {out_dir}", markup=False)
        if console is not out_console:
            sys.stdout.write("".join(line.rstrip() + "\n" for line in buf.getvalue().splitlines()))
