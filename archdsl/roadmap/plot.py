"""`archdsl roadmap --plot FILE.png`: the roadmap drawn in the style of the paper's Figure 2.

A horizontal bar per step, top (ResNet-50) to bottom (ConvNeXt-T): on the left our GMACs
(with the paper's GFLOPs marked where they differ), on the right the paper's top-1 with its
spread over runs. Steps are coloured by the part of the roadmap they belong to; side
branches (the kernel-size variants) are drawn lighter, indented, joined to their step.
"""
from __future__ import annotations

from pathlib import Path

_COLOURS = {"start": "#9e9e9e", "training": "#7f7f7f", "macro design": "#4c72b0", "ResNeXt": "#55a868",
            "inverted bottleneck": "#c44e52", "large kernel": "#8172b2", "micro design": "#dd8452"}


def plot_roadmap(rows, path: str | Path) -> Path:
    """Draw the rows (from `roadmap_rows`) into a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from .paper import RESNET50, SWIN_T

    path = Path(path)
    rows = [r for r in rows if not r.reference]  # Swin-T is drawn as a line, not a bar
    n = len(rows)
    y = list(range(n))[::-1]  # first step at the top
    fig, (ax_macs, ax_acc) = plt.subplots(1, 2, sharey=True, figsize=(13, 0.42 * n + 1.8),
                                          gridspec_kw={"width_ratios": [1, 1.2], "wspace": 0.04})
    colours = [_COLOURS.get(r.paper_group or "", "#4c72b0") for r in rows]
    alphas = [0.45 if r.branch else 1.0 for r in rows]
    heights = [0.5 if r.branch else 0.72 for r in rows]

    for yi, r, c, a, h in zip(y, rows, colours, alphas, heights):
        style = {"color": c, "alpha": a, "height": h, "hatch": "//" if r.branch else None,
                 "edgecolor": c if r.branch else "white"}
        ax_macs.barh(yi, r.gmacs, **style)
        label = f"{r.gmacs:.2f}"
        if r.flops_differ:  # the paper's figure, marked where it is not ours
            ax_macs.plot([r.paper_gflops], [yi], marker="D", color="black", markersize=4)
            label += f"  (paper {r.paper_gflops:.2f})"
        ax_macs.text(max(r.gmacs, r.paper_gflops or 0) + 0.08, yi, label, va="center", ha="right", fontsize=8)
        if r.paper_top1 is not None:
            ax_acc.barh(yi, r.paper_top1 - 70, left=70, xerr=r.paper_top1_std or None,
                        error_kw={"elinewidth": 0.8, "capsize": 2}, **style)
            ax_acc.text(r.paper_top1 + (r.paper_top1_std or 0) + 0.08, yi, f"{r.paper_top1:.2f}",
                        va="center", fontsize=8)
            if r.paper_label:
                ax_acc.text(75.1, yi, r.paper_label, va="center", fontsize=8,
                            color="#333333" if r.branch else "white", fontweight="bold")

    by_name = {r.step: yi for yi, r in zip(y, rows)}
    for yi, r in zip(y, rows):  # a branch hangs off the step it extends
        if r.branch and r.parent in by_name:
            py = by_name[r.parent]
            ax_macs.plot([-0.12, -0.12, 0], [py, yi, yi], color="#555555", lw=0.8, clip_on=False)

    ax_macs.set_yticks(y)
    ax_macs.set_yticklabels([("    " * r.level) + r.step for r in rows], fontsize=9)
    for label, r in zip(ax_macs.get_yticklabels(), rows):
        label.set_color("#666666" if r.branch else "black")
    ax_macs.invert_xaxis()
    ax_macs.set_xlim(max(max(r.gmacs, r.paper_gflops or 0) for r in rows) * 1.3, 0)
    ax_macs.set_xlabel("GMACs at 224x224 (archdsl, analytic)")
    ax_macs.set_ylim(-0.7, n - 0.3)
    ax_acc.set_xlim(75, 83.5)
    ax_acc.set_xlabel("ImageNet-1K top-1 % (paper, Table 10)")
    ax_acc.axvline(RESNET50["top1"], color="#9e9e9e", ls="--", lw=0.8)
    ax_acc.axvline(SWIN_T["top1"], color="#333333", ls=":", lw=1)
    ax_acc.text(SWIN_T["top1"], n - 0.35, f" Swin-T {SWIN_T['top1']:.1f}", fontsize=8, va="bottom")
    ax_acc.text(RESNET50["top1"], n - 0.35, f" ResNet-50 {RESNET50['top1']:.1f}", fontsize=8, va="bottom")
    for ax in (ax_macs, ax_acc):
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="x", alpha=0.25)
    ax_acc.spines["left"].set_visible(False)
    ax_acc.tick_params(axis="y", length=0)

    groups = list(dict.fromkeys(r.paper_group for r in rows if r.paper_group))
    handles = [Patch(color=_COLOURS.get(g, "#4c72b0"), label=g) for g in groups]
    handles.append(Patch(facecolor="white", edgecolor="#8172b2", hatch="//", label="variant (side branch)"))
    ax_acc.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return _save(fig, path, "Modernizing a ResNet-50 into a ConvNeXt-T: cost (archdsl) and accuracy (paper)")


def plot_ablation(ab, path: str | Path, chain_rows=None) -> Path:
    """An ablation (`archdsl ablate --plot`) beside its chain: a row per step; on the left the
    chain's GMACs after the step (as in Figure 2), on the right the variant's (the chain without
    the step, or the step alone), with the reference's marked. A variant that does not check
    is drawn as a cross."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .chain import roadmap_rows
    from .paper import paper_row

    path = Path(path)
    if chain_rows is None:
        chain_rows = [r for r in roadmap_rows(ab.dir) if not r.branch]
    by_step = {r.step: r for r in chain_rows}
    rows = ab.rows
    n = len(rows)
    y = list(range(n))[::-1]
    fig, (ax_chain, ax_var) = plt.subplots(1, 2, sharey=True, figsize=(13, 0.42 * n + 1.8),
                                           gridspec_kw={"width_ratios": [1, 1.2], "wspace": 0.04})
    top = max([ab.reference_macs / 1e9] + [r.gmacs for r in chain_rows] + [(r.macs or 0) / 1e9 for r in rows])
    for yi, r in zip(y, rows):
        p = paper_row(r.step)
        colour = _COLOURS.get(p.group if p else "", "#4c72b0")
        step = by_step.get(r.step)
        if step is not None:
            ax_chain.barh(yi, step.gmacs, color=colour, height=0.72, edgecolor="white")
            ax_chain.text(step.gmacs + 0.08, yi, f"{step.gmacs:.2f}", va="center", ha="right", fontsize=8)
        if r.macs is None:
            ax_var.plot([ab.reference_macs / 1e9], [yi], marker="x", color="#c44e52", markersize=8)
            ax_var.text(ab.reference_macs / 1e9 + 0.1, yi, "does not check", va="center", fontsize=8, color="#c44e52")
            continue
        g = r.macs / 1e9
        ax_var.barh(yi, g, color=colour, height=0.72, alpha=0.55, hatch="//" if r.depends else None,
                    edgecolor=colour)
        d = (r.d_macs or 0) / 1e9
        label = f"{g:.2f} ({'+' if d > 0 else ''}{d:.2f})" + ("  needed by later steps" if r.depends and
                                                                ab.mode == "leave-one-out" else "")
        ax_var.text(g + 0.08, yi, label, va="center", fontsize=8)
    ax_var.axvline(ab.reference_macs / 1e9, color="#333333", ls=":", lw=1)
    ax_var.text(ab.reference_macs / 1e9, n - 0.35, f" {ab.reference}", fontsize=8, va="bottom")
    ax_chain.set_yticks(y)
    word = "without" if ab.mode == "leave-one-out" else "only"
    ax_chain.set_yticklabels([f"{word} {r.step}" for r in rows], fontsize=9)
    ax_chain.invert_xaxis()
    ax_chain.set_xlim(top * 1.3, 0)
    ax_chain.set_xlabel("the chain: GMACs after the step")
    ax_var.set_xlim(0, top * 1.6)
    ax_var.set_xlabel(f"the variant ({ab.mode}): GMACs (Δ against {ab.reference})")
    ax_chain.set_ylim(-0.7, n - 0.3)
    for ax in (ax_chain, ax_var):
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="x", alpha=0.25)
    ax_var.spines["left"].set_visible(False)
    ax_var.tick_params(axis="y", length=0)
    return _save(fig, path, f"Ablation ({ab.mode}) of the chain from {ab.root}: cost at the specs' input size")


def _save(fig, path: Path, title: str) -> Path:
    """Title the figure, leaving room for it above the axes, and write it as a PNG."""
    import matplotlib.pyplot as plt

    height = fig.get_figheight()
    fig.suptitle(title, fontsize=11, y=1 - 0.12 / height)
    fig.subplots_adjust(top=1 - 0.6 / height)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path
