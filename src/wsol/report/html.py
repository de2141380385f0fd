"""``wsol report``: a static HTML report of evaluations that opens from disk (no server, no network).

``OUT/index.html`` with, inline or beside it in ``OUT/assets/``: the metrics table (mean ± sd over seeds,
validation τ with the oracle τ beside) and the paired differences of ``wsol.report.compare``; τ curves and PR
curves of every method; a sortable per-image table (image, class, prediction, IoU⁺, F1⁺, F1⁻, box hit) with
each image's overlay (ground-truth contour green, map, predicted-mask contour white, largest box yellow); the
best and worst images of each method by IoU⁺; and every run's provenance record. The page's script (table
sorting) marks ``<body data-report-ready="1">`` when it has run and ``data-report-error`` on any error.
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from wsol.data.format import DATASET_FILE, read_dataset_info, read_split
from wsol.data.images import read_image, read_mask
from wsol.evaluation.maps_io import load_scoremap, scoremap_path
from wsol.evaluation.protocol import headline_indices
from wsol.io import atomic_write_bytes, atomic_write_text
from wsol.report.compare import COLUMNS, Run, compare, group_runs, per_image_values
from wsol.report.overlay import OverlayStyle, draw_overlay, save_png

THUMBNAIL_MIN_SIDE = 128
_SCRIPT = """
window.onerror = function (message) { document.body.setAttribute('data-report-error', String(message)); };
function sortTable(header) {
  var table = header.closest('table'), body = table.tBodies[0];
  var column = Array.prototype.indexOf.call(header.parentNode.children, header);
  var ascending = header.getAttribute('data-order') !== 'asc';
  var rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = a.cells[column].getAttribute('data-value'), y = b.cells[column].getAttribute('data-value');
    var nx = parseFloat(x), ny = parseFloat(y), result;
    if (!isNaN(nx) && !isNaN(ny)) { result = nx - ny; }
    else if (isNaN(nx) !== isNaN(ny)) { result = isNaN(nx) ? 1 : -1; }
    else { result = String(x).localeCompare(String(y)); }
    return ascending ? result : -result;
  });
  rows.forEach(function (row) { body.appendChild(row); });
  header.setAttribute('data-order', ascending ? 'asc' : 'desc');
}
document.querySelectorAll('table.sortable th').forEach(function (th) {
  th.addEventListener('click', function () { sortTable(th); });
});
document.getElementById('row-count').textContent =
  String(document.querySelectorAll('#per-image tbody tr').length);
document.body.setAttribute('data-report-ready', '1');
"""
_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
th { background: #f0f0f0; cursor: pointer; } td.text, th.text { text-align: left; }
img.thumb { image-rendering: pixelated; height: 96px; }
figure { display: inline-block; margin: 4px; font-size: 12px; text-align: center; }
pre { background: #f7f7f7; padding: 0.5em; overflow-x: auto; font-size: 12px; }
"""


@dataclass(frozen=True)
class ReportOptions:
    """``overlays``: images per method drawn in the per-image table; ``extremes``: best/worst shown."""

    overlays: int = 300
    extremes: int = 4
    resamples: int = 2000


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def _mean_curve(runs: Sequence[Run], key: str) -> np.ndarray | None:
    curves = [np.asarray(r.metrics["curves"][key], dtype=float) for r in runs if key in r.metrics["curves"]]
    return np.mean(curves, axis=0) if curves else None


def tau_figure(groups: dict[str, list[Run]]) -> bytes:
    """Mean test curves over seeds against τ, the validation τ of the first run dotted."""
    figure = Figure(figsize=(11, 4))
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2)
    for axis, keys, title in (
        (axes[0], ("box_acc_v2@50",), "BoxAcc (all contours, δ 50) vs τ"),
        (axes[1], ("f1_pos", "f1_neg"), "per-image F1⁺ / F1⁻ vs τ"),
    ):
        for label, runs in groups.items():
            for key in keys:
                curve = _mean_curve(runs, key)
                if curve is None:
                    continue
                tau = np.asarray(runs[0].metrics["curves"]["tau"])
                (line,) = axis.plot(tau, curve, label=f"{label} {key}", linewidth=1.2)
                chosen = (runs[0].metrics.get("val_tau") or {}).get("tau", {}).get(key)
                if chosen is not None:
                    axis.axvline(chosen, color=line.get_color(), linestyle=":", linewidth=0.8)
        axis.set(xlabel="τ", ylabel="%", ylim=(0, 100), title=title)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    return _png(figure)


def pr_figure(groups: dict[str, list[Run]]) -> bytes:
    """The pooled pixel precision-recall curve (PxAP) of every run."""
    figure = Figure(figsize=(5.5, 4))
    FigureCanvasAgg(figure)
    axis = figure.subplots()
    for label, runs in groups.items():
        color = None
        for run in runs:
            curves = run.metrics.get("pr_curves") or {}
            if "pxap_recall" not in curves:
                continue
            name = f"{label} seed {run.seed} (PxAP {run.metrics.get('pxap') or 0:.1f})"
            (line,) = axis.plot(curves["pxap_recall"], curves["pxap_precision"], color=color, label=name)
            color = line.get_color()
    axis.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="pixel precision-recall")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    return _png(figure)


def _cell(stats: dict[str, Any]) -> str:
    if stats["mean"] is None:
        return "<td>n/a</td>"
    text = f"{stats['mean']:.2f}" + (f" ± {stats['sd']:.2f}" if stats["sd"] is not None else "")
    return f'<td data-value="{stats["mean"]:.6f}">{text}</td>'


def _seeds(seeds: Sequence[int | None]) -> str:
    return ", ".join("?" if seed is None else str(seed) for seed in seeds)


def metrics_tables(document: dict[str, Any]) -> str:
    """HTML tables of the comparison document: mean ± sd per method and column."""
    heads = ['<th class="text">method</th>', '<th class="text">seeds</th>']
    for column in COLUMNS:
        heads.append(f"<th>{_esc(column.title)}{' (val τ)' if column.tau else ''}</th>")
        if column.tau:
            heads.append(f"<th>{_esc(column.title)} (oracle τ)</th>")
    rows = []
    for method in document["methods"]:
        cells = [
            f'<td class="text">{_esc(method["label"])}</td>',
            f'<td class="text">{_esc(_seeds(method["seeds"]))}</td>',
        ]
        for column in COLUMNS:
            entry = method["metrics"][column.key]
            cells.append(_cell(entry["value"]))
            if column.tau:
                cells.append(_cell(entry["oracle"]))
        rows.append(f"<tr>{''.join(cells)}</tr>")
    text = f'<table class="sortable" id="metrics"><thead><tr>{"".join(heads)}</tr></thead>'
    text += f"<tbody>{''.join(rows)}</tbody></table>"
    if document["paired"]:
        keys = [c for c in COLUMNS if c.per_image]
        head = "".join(f"<th>{_esc(c.title)}</th>" for c in keys)
        text += "<p>Paired differences A − B on the same images, 95 % bootstrap interval over images:</p>"
        head = f'<th class="text">A − B</th><th>images</th>{head}'
        text += f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>'
        for pair in document["paired"]:
            cells = []
            for column in keys:
                entry = pair["metrics"].get(column.key)
                cells.append(
                    "<td>n/a</td>"
                    if entry is None
                    else f'<td data-value="{entry["difference"]:.6f}">{entry["difference"]:+.2f} '
                    f"[{entry['low']:+.2f}, {entry['high']:+.2f}]</td>"
                )
            label = f"{pair['a']} − {pair['b']}"
            text += f'<tr><td class="text">{_esc(label)}</td><td>{pair["n_images"]}</td>{"".join(cells)}</tr>'
        text += "</tbody></table>"
    return text


@dataclass(frozen=True)
class _Truth:
    image_root: Path
    mask_root: Path
    records: dict[str, Any]
    class_names: list[str]


def _truth(run: Run) -> _Truth | None:
    dataset = (run.metrics.get("provenance") or {}).get("dataset") or {}
    root, split = dataset.get("root"), dataset.get("split")
    if not root or not split or not (Path(root) / DATASET_FILE).is_file():
        return None
    info = read_dataset_info(Path(root))
    records = {record.image_id: record for record in read_split(Path(root), split)}
    names = list(info.class_names) or [str(i) for i in range(info.num_classes)]
    return _Truth(info.resolve_image_root(Path(root)), info.resolve_mask_root(Path(root)), records, names)


def _map_file(run: Run, image_id: str) -> Path | None:
    source = (run.metrics.get("provenance") or {}).get("source") or {}
    for folder in (run.path / "predictions" / "maps", Path(source["maps"]) if source.get("maps") else None):
        if folder is not None and folder.is_dir():
            try:
                return scoremap_path(folder, image_id)
            except FileNotFoundError:
                continue
    return None


def _largest_box(mask: np.ndarray) -> list[list[float]]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return []
    x, y, w, h = cv2.boundingRect(max(contours, key=cv2.contourArea))
    return [[float(x), float(y), float(x + w), float(y + h)]]


def draw_image(run: Run, truth: _Truth, image_id: str, taus: dict[str, float]) -> np.ndarray | None:
    """Image with the GT contour, the run's map, predicted-mask contour (pixel τ) and largest box (box τ)."""
    path = _map_file(run, image_id)
    record = truth.records.get(image_id)
    if path is None or record is None:
        return None
    scoremap = np.clip(np.nan_to_num(load_scoremap(path).astype(np.float64)), 0.0, 1.0)
    height, width = scoremap.shape
    image = cv2.resize(read_image(truth.image_root / image_id), (width, height), interpolation=cv2.INTER_AREA)
    boxes = _largest_box(scoremap >= taus["box"])
    panel = draw_overlay(
        image, scoremap, scoremap >= taus["pixel"], boxes, OverlayStyle(box_color=(255, 255, 0))
    )
    if record.mask_paths:
        gt = np.any([read_mask(truth.mask_root / name) for name in record.mask_paths], axis=0)
        gt = cv2.resize(gt.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(gt, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(panel, contours, -1, (0, 255, 0), 1)
    scale = max(1, -(-THUMBNAIL_MIN_SIDE // height))
    return cv2.resize(panel, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)


def _headline_taus(run: Run) -> dict[str, float]:
    indices = headline_indices(run.metrics)
    grid = run.metrics["curves"]["tau"]
    return {
        "pixel": float(grid[indices.get("f1_pos", 0)]) if "f1_pos" in indices else 0.5,
        "box": float(grid[indices.get("box_acc@50", 0)]) if "box_acc@50" in indices else 0.5,
    }


def _fmt(value: float) -> tuple[str, str]:
    return ("", "–") if np.isnan(value) else (f"{value:.4f}", f"{value:.1f}")


def per_image_rows(groups: dict[str, list[Run]], out_dir: Path, options: ReportOptions) -> tuple[str, str]:
    """The per-image table rows and the best/worst section, drawing the overlays into ``out_dir/assets``."""
    rows, extremes = [], []
    for number, (label, runs) in enumerate(groups.items()):
        run = runs[0]
        if run.per_image is None:
            continue
        truth = _truth(run)
        values = per_image_values(run)
        taus = _headline_taus(run)
        stats = run.per_image
        pictures: dict[str, str] = {}
        for index, image_id in enumerate(stats.image_id.tolist()):
            picture = None
            if truth is not None and index < options.overlays:
                picture = draw_image(run, truth, image_id, taus)
            if picture is not None:
                name = f"assets/overlays/m{number}_{index:05d}.png"
                save_png(out_dir / name, picture)
                pictures[image_id] = name
            names = truth.class_names if truth is not None else []
            label_id, predicted = int(stats.label[index]), int(stats.predicted[index])
            cells = [
                f'<td class="text" data-value="{_esc(image_id)}">{_esc(image_id)}</td>',
                f'<td class="text" data-value="{_esc(label)}">{_esc(label)}</td>',
                _class_cell(label_id, names),
                _class_cell(predicted, names),
            ]
            for key in ("iou_pos_best", "f1_pos_best", "f1_neg_best", "box_acc@50"):
                value = values.get(key, np.full(len(stats), np.nan))[index]
                sort, shown = _fmt(value)
                cells.append(f'<td data-value="{sort}">{shown}</td>')
            image = pictures.get(image_id)
            thumb = f'<img class="thumb" loading="lazy" src="{image}" alt="">' if image else "–"
            cells.append(f'<td class="text" data-value="">{thumb}</td>')
            rows.append(f"<tr>{''.join(cells)}</tr>")
        extremes.append(
            _extremes(label, stats.image_id.tolist(), values.get("iou_pos_best"), pictures, options)
        )
    return "".join(rows), "".join(extremes)


def _class_cell(index: int, names: Sequence[str]) -> str:
    if index < 0:
        return '<td class="text" data-value="">–</td>'
    name = names[index] if index < len(names) else str(index)
    return f'<td class="text" data-value="{_esc(name)}">{_esc(name)}</td>'


def _extremes(
    label: str, ids: list[str], iou: np.ndarray | None, pictures: dict[str, str], options: ReportOptions
) -> str:
    if iou is None:
        return ""
    order = [i for i in np.argsort(-np.nan_to_num(iou, nan=-1.0), kind="stable") if not np.isnan(iou[i])]
    parts = [f"<h3>{_esc(label)}</h3>"]
    for title, chosen in (("best", order[: options.extremes]), ("worst", order[::-1][: options.extremes])):
        figures = "".join(
            f'<figure><img class="thumb" src="{pictures[ids[i]]}" alt=""><figcaption>{_esc(ids[i])}<br>'
            f"IoU⁺ {iou[i]:.1f}</figcaption></figure>"
            for i in chosen
            if ids[i] in pictures
        )
        parts.append(f"<p>{title} by IoU⁺:</p><div>{figures or '(no overlays)'}</div>")
    return "".join(parts)


def provenance_section(runs: Sequence[Run]) -> str:
    """HTML section with each run's provenance record."""
    parts = []
    for run in runs:
        record = json.dumps(run.metrics.get("provenance"), indent=2, sort_keys=True, default=str)
        summary = f"{run.label} — seed {run.seed} — {run.path}"
        parts.append(f"<details><summary>{_esc(summary)}</summary><pre>{_esc(record)}</pre></details>")
    return "".join(parts)


def build_report(runs: Sequence[Run], out_dir: Path, options: ReportOptions | None = None) -> Path:
    """Write ``out_dir/index.html`` and its ``assets/``; returns the page's path."""
    options = options or ReportOptions()
    if not runs:
        raise ValueError("report: expected at least one run")
    out_dir = Path(out_dir)
    groups = group_runs(runs)
    document = compare(runs, resamples=options.resamples)
    atomic_write_bytes(out_dir / "assets" / "tau_curves.png", tau_figure(groups))
    atomic_write_bytes(out_dir / "assets" / "pr_curves.png", pr_figure(groups))
    rows, extremes = per_image_rows(groups, out_dir, options)
    heads = [
        "image",
        "method",
        "class",
        "prediction",
        "IoU⁺ %",
        "F1⁺ %",
        "F1⁻ %",
        "box hit (δ 50) %",
        "overlay",
    ]
    header = "".join(f"<th>{_esc(title)}</th>" for title in heads)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>wsol report</title><style>{_STYLE}</style></head>
<body>
<h1>wsol report</h1>
<p>{len(runs)} evaluation(s) of {len(groups)} method(s). Headline figures use the τ chosen on the validation
split; the oracle τ (chosen on the reported split itself, as the papers do) is given beside them.</p>
<h2>Metrics (mean ± sd over seeds)</h2>
{metrics_tables(document)}
<h2>τ curves and precision-recall</h2>
<img src="assets/tau_curves.png" alt="tau curves"> <img src="assets/pr_curves.png" alt="PR curves">
<h2>Best and worst images per method (first seed)</h2>
<p>Overlay: ground truth contour green, map, predicted mask contour white, largest box yellow.</p>
{extremes}
<h2>Per-image results (first seed of each method)</h2>
<p><span id="row-count">?</span> rows; click a header to sort.</p>
<table class="sortable" id="per-image"><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>
<h2>Provenance</h2>
{provenance_section(runs)}
<script>{_SCRIPT}</script>
</body></html>
"""
    path = out_dir / "index.html"
    atomic_write_text(path, page)
    return path
