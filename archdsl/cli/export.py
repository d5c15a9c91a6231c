"""`archdsl export SPEC --to model.py|model.onnx` and `archdsl draw SPEC --to FILE.svg|.png`
(`archdsl draw --diff A B --to FILE`): the ways a network leaves archdsl."""
# No `from __future__ import annotations`: typer reads the real annotations of the commands.

import os
from pathlib import Path
from typing import Annotated

import typer

from ..lang.errors import ArchError
from .common import (FeaturesOpt, OutIndicesOpt, SetOpt, TapsOpt, complete_spec, fail, failed, out, overrides,
                     tap_options, usage)

ToOpt = Annotated[str, typer.Option("--to", help="The file to write; its suffix says what to write.",
                                    show_default=False)]


def target(to: str, suffixes: tuple[str, ...]) -> Path:
    """The output path, checked before any work: a known suffix (else a usage error), not a
    directory, in a directory that exists and can be written."""
    path = Path(to)
    if path.is_dir():
        usage(f"`--to {to}` is a directory; name a file in it, e.g. {path / ('model' + suffixes[0])}")
    if path.suffix == "" and path.name.lower() in suffixes:  # `--to .py`: a hidden name, no suffix
        usage(f"`--to {to}` names a file with no suffix (a name starting with `.` is all name); "
              f"name the file, e.g. `--to model{path.name}`")
    if path.suffix.lower() not in suffixes:
        usage(f"`--to {to}`: the suffix must be one of {', '.join(suffixes)} (it says what to write)")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        failed(f"cannot write {to}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        failed(f"cannot write {to}: permission denied")
    return path


def _write_error(path: Path, e: OSError) -> None:
    failed(f"cannot write {path}: {e.strerror or e}")


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        spec: Annotated[str, typer.Argument(help="A spec: a path to a .arch file or a shipped name.",
                                            autocompletion=complete_spec)],
        to: ToOpt,
        set_: SetOpt = None,
        dynamic_batch: Annotated[bool, typer.Option("--dynamic-batch", help="ONNX: a batch axis of any "
                                                    "size (default: fixed at 2).")] = False,
        features: FeaturesOpt = False,
        out_indices: OutIndicesOpt = None,
        taps: TapsOpt = None,
    ) -> None:
        """Write the network as one PyTorch file (.py, torch only) or as ONNX (.onnx, validated
        with onnx.checker and onnxruntime)."""
        path = target(to, (".py", ".onnx"))
        tapped = tap_options(features, out_indices, taps)
        try:
            kw = overrides(set_)
            if path.suffix.lower() == ".py":
                from ..interop.export_code import ExportError, code

                try:
                    text = code(spec, **tapped, **kw)
                except ExportError as e:
                    failed(f"cannot export {spec} as Python: {e}")
                from ..atomic import write_text

                try:
                    write_text(path, text)
                except OSError as e:
                    _write_error(path, e)
                classes = sum(1 for line in text.splitlines() if line.startswith("class "))
                out.print(f"wrote {path}: {len(text.splitlines())} lines, {classes} classes, torch only; "
                          f"archdsl.build's state dict loads into its `build()`", markup=False, soft_wrap=True)
                return
            from ..interop.export_onnx import MissingExtra, export_onnx, require

            try:
                require()
            except MissingExtra as e:
                failed(str(e))
            from ..api import as_network, build

            net = as_network(spec, **kw)
            model = build(net, **tapped)
            try:
                result = export_onnx(model, tuple(net.input), path, dynamic_batch=dynamic_batch)
            except OSError as e:
                _write_error(path, e)
            except (ValueError, RuntimeError) as e:
                failed(f"ONNX export of {net.name} failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            batch = "any batch size" if dynamic_batch else "batch 2"
            out.print(f"wrote {path}: {result.size_bytes / 1e6:.1f} MB, opset {result.opset}, input x "
                      f"({batch}, {', '.join(map(str, net.input))}), output {', '.join(result.outputs)}; onnx.checker ok; "
                      f"onnxruntime vs PyTorch max |diff| {result.max_abs_diff:.2g} on batch {result.batch}"
                      + "".join(f"; its weights are in {f} (keep it beside the .onnx)" for f in result.extra_files),
                      markup=False, soft_wrap=True)
        except ArchError as e:
            fail(e)

    @app.command("draw")
    def draw(
        specs: Annotated[list[str], typer.Argument(help="A spec (or, with --diff, two).", show_default=False,
                                                   autocompletion=complete_spec)],
        to: ToOpt,
        diff: Annotated[bool, typer.Option("--diff", help="Two specs: their blocks side by side, the "
                                                          "changed ops marked.")] = False,
        set_: SetOpt = None,
    ) -> None:
        """Draw a network (stem, stages, downsample, head; each block op by op) or, with --diff,
        two blocks side by side. SVG or PNG."""
        if diff and len(specs) != 2:
            usage(f"--diff takes two specs, got {len(specs)}")
        if not diff and len(specs) != 1:
            usage(f"draw takes one spec (or two with --diff), got {len(specs)}")
        path = target(to, (".svg", ".png"))
        from ..interop.draw import draw_diff, draw_network

        try:
            kw = overrides(set_)
            try:
                fig = draw_diff(specs[0], specs[1], path, **kw) if diff else draw_network(specs[0], path, **kw)
            except OSError as e:
                _write_error(path, e)
        except ArchError as e:
            fail(e)
        out.print(f"wrote {path} ({fig})", markup=False, soft_wrap=True)
