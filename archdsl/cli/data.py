"""`archdsl data pack DIR --to OUTDIR`: an ImageFolder written as WebDataset tar shards;
`archdsl data check DATA`: list a folder or index shards as training will, and say what it found."""
# No `from __future__ import annotations`: typer reads the real annotations of the commands.

import os
from typing import Annotated

import typer

from ..lang.errors import ArchError
from .common import err, fail, failed, say, usage


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(no_args_is_help=True, help="Prepare training data: pack an ImageFolder "
                                                        "into tar shards.")
    app.add_typer(data_app, name="data")

    @data_app.command("pack")
    def pack_command(
        folder: Annotated[str, typer.Argument(help="An ImageFolder: DIR/train/<class>/... and "
                                                   "DIR/val/<class>/...")],
        to: Annotated[str, typer.Option("--to", help="The folder to create (must not exist, or be "
                                                     "empty).", show_default=False)],
        shard_size: Annotated[int, typer.Option("--shard-size", help="Images per shard.")] = 1000,
        seed: Annotated[int, typer.Option(help="Seed of the one shuffle before cutting shards.",
                                          min=0)] = 0,
        skip_bad_images: Annotated[bool, typer.Option(
            "--skip-bad-images", help="Leave out (and list in index.json) files that are no "
                                      "image Pillow can open, instead of stopping.")] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
    ) -> None:
        """Write train-NNNNNN.tar and val-NNNNNN.tar (WebDataset format: key.jpg + key.cls) and
        index.json (classes, counts, sha256 per shard), atomically. Train with
        `--data OUTDIR` or `--data 'OUTDIR/train-{000000..000012}.tar'`."""
        from ..data.pack import pack

        if shard_size < 1:
            usage(f"--shard-size must be at least 1, not {shard_size}")

        def progress(split: str, done: int, total: int) -> None:
            if not quiet and err.is_terminal:  # a counter redrawn in place; nothing in a log
                err.print(f"  {split}: {done:,}/{total:,} images", end="\r", markup=False)

        try:
            packed = pack(folder, to, shard_size=shard_size, seed=seed,
                          skip_bad=skip_bad_images, progress=progress)
        except ArchError as e:
            fail(e)
        except OSError as e:
            failed(f"cannot pack {folder} into {to}: {e.strerror or e}"
                   + (f" ({e.filename})" if e.filename else ""))
        if quiet:
            return
        if err.is_terminal:
            err.print(" " * 40, end="\r")
        for split in ("train", "val"):
            say(f"{split}: {packed.counts[split]:,} images in {packed.shards[split]} shard(s)")
        say(f"classes: {len(packed.classes)}; {packed.bytes / 2 ** 20:,.1f} MiB; index: "
            f"{packed.to}/index.json")
        if packed.skipped:
            say(f"skipped {len(packed.skipped)} unreadable file(s), listed in index.json; first: "
                f"{packed.skipped[0][0]}: {packed.skipped[0][1]}")

    @data_app.command("check")
    def check_command(
        data: Annotated[str, typer.Argument(help="An ImageFolder DIR, a folder of train-*.tar/val-*.tar "
                                                 "shards, or a pattern 'DIR/train-{000000..000127}.tar'.")],
        skip_bad_images: Annotated[bool, typer.Option(
            "--skip-bad-images", help="List files that are no regular file instead of stopping.")] = False,
        verify: Annotated[bool, typer.Option(
            "--verify", help="Shards: also hash every shard and compare with index.json's sha256 "
                             "(reads every byte).")] = False,
    ) -> None:
        """List the folder (names only) or index the shards (tar headers only), as training does,
        and print the classes and counts; a missing or truncated shard, a symbolic-link loop or a
        FIFO is reported here, before a run."""
        from ..data.listing import list_folder
        from ..data.shards import find_shards, is_shards, open_split
        from ..data.shards import verify as verify_shards

        try:
            if is_shards(data):
                src = find_shards(data)
                counts = {split: open_split(src, split) for split in ("train", "val")}
                n_classes = len(src.classes) if src.classes else int(counts["train"].label.max()) + 1
                for split, idx in counts.items():
                    shards = src.train if split == "train" else src.val
                    say(f"{split}: {len(idx):,} images in {len(shards)} shard(s)")
                say(f"classes: {n_classes}" + ("" if src.classes else " (no index.json: 0..max label)"))
                if verify:
                    say(f"sha256: {verify_shards(src)} shard(s) match index.json")
                return
            if verify:
                usage("--verify checks shards against their index.json; DATA is a folder")
            folder = list_folder(data, skip_bad=skip_bad_images)
        except ArchError as e:
            fail(e)
        for split in (folder.train, folder.val):
            say(f"{os.path.basename(split.root)}: {len(split):,} images")
        say(f"classes: {len(folder.classes)} ({', '.join(folder.classes[:5])}"
            + (", ..." if len(folder.classes) > 5 else "") + ")")
        for path, why in folder.train.skipped + folder.val.skipped:
            say(f"skipped {path}: {why}")
