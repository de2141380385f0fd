"""PNG plots of an evaluation: τ curves (BoxAcc per IoU threshold, pixel metrics) and precision-recall curves.

Rendered with matplotlib's Agg canvas on standalone ``Figure`` objects (no pyplot state, no global backend
switch) into bytes, so callers write them atomically (``wsol.io``).
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from wsol.evaluation import EvaluationResult
from wsol.io import atomic_write_bytes

_PIXEL_CURVES = ("f1_pos", "f1_neg", "miou")


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def tau_curves_png(result: EvaluationResult) -> bytes | None:
    """BoxAcc(τ, δ) for the largest contour and all contours, and per-image pixel metrics, against τ."""
    tau = result.curves.get("tau")
    box_keys = [k for k in result.curves if k.startswith("box_acc")]
    pixel_keys = [k for k in _PIXEL_CURVES if k in result.curves]
    panels = [
        (title, keys)
        for title, keys in (
            ("BoxAcc (GT-known) vs τ", box_keys),
            ("pixel metrics (per-image mean) vs τ", pixel_keys),
        )
        if keys
    ]
    if tau is None or not panels:
        return None
    figure = _figure(5.5 * len(panels), 4)
    axes = figure.subplots(1, len(panels), squeeze=False)
    for axis, (title, keys) in zip(axes[0], panels, strict=True):
        for key in keys:
            (line,) = axis.plot(tau, result.curves[key], label=key, linewidth=1.2)
            if key in result.best_tau:
                best = result.best_tau[key]
                axis.axvline(best, color=line.get_color(), linestyle=":", linewidth=0.8)
        axis.set_xlabel("τ (relative threshold)")
        axis.set_ylabel("%")
        axis.set_ylim(0, 100)
        axis.set_title(title)
        axis.legend(fontsize=7)
        axis.grid(alpha=0.3)
    return _png(figure)


def pr_curves_png(result: EvaluationResult) -> bytes | None:
    """The pooled PxAP precision-recall curve and the per-image averaged foreground/background PR curves."""
    curves = result.pr_curves
    if not curves:
        return None
    figure = _figure(5.5, 4)
    axis = figure.subplots()
    if "pxap_recall" in curves:
        axis.plot(curves["pxap_recall"], curves["pxap_precision"], label=f"pooled (PxAP {result.pxap:.2f})")
    for key, label in (
        ("precision_fg", "foreground, per-image mean"),
        ("precision_bg", "background, per-image mean"),
    ):
        if key in curves:
            axis.plot(curves["recall"], curves[key], label=label)
    axis.set_xlabel("recall")
    axis.set_ylabel("precision")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1.02)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    axis.set_title("precision-recall")
    return _png(figure)


def save_evaluation_plots(result: EvaluationResult, out_dir: Path) -> list[Path]:
    """Write ``tau_curves.png`` and ``pr_curves.png`` (those that have data) atomically; returns their
    paths."""
    written = []
    for name, render in (("tau_curves.png", tau_curves_png), ("pr_curves.png", pr_curves_png)):
        data = render(result)
        if data is not None:
            path = Path(out_dir) / name
            atomic_write_bytes(path, data)
            written.append(path)
    return written
