"""Comparing evaluations: mean ± sd over seeds per method, and paired bootstrap intervals of differences.

A *run* is an evaluation folder (``metrics.json`` with its curves, ``per_image.npz``) written by ``wsol
evaluate``, or a training run folder holding one in ``evaluation/`` (``wsol train --seeds``). Runs are grouped
by the label of their provenance record (the method), in the order given. Headline figures use the τ chosen on
validation; the oracle figures (τ chosen on the reported split itself) are kept beside them.

For each pair of methods evaluated on the same images, the difference of every per-image-decomposable metric
(and of PxAP, from the per-image score histograms) gets a paired percentile-bootstrap 95 % interval: images
are resampled with replacement, identically for both methods, and each method's statistic on a resample is the
mean over its seeds (Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from wsol.evaluation.catalogue import comparison_metrics
from wsol.evaluation.per_image import PerImageStats
from wsol.evaluation.pixel import pxap
from wsol.evaluation.protocol import METRICS_FILE, PER_IMAGE_FILE, headline_indices

EVALUATION_DIR = "evaluation"
"""Where ``wsol train --seeds`` evaluates each run (inside the run folder)."""


@dataclass(frozen=True)
class Column:
    """A compared metric: ``key`` in ``metrics.json``; ``tau`` whether it is maximised over τ (so it has a
    validation-τ and an oracle figure); ``per_image`` its per-image key (None: no paired interval)."""

    key: str
    title: str
    tau: bool = False
    per_image: str | None = None


COLUMNS = tuple(Column(m.name, m.title, m.tau, m.per_image) for m in comparison_metrics())
"""The compared metrics, from the metric catalogue (``wsol.evaluation.catalogue``)."""


@dataclass(frozen=True)
class Run:
    """One evaluation: where it is, its method label and seed, ``metrics.json`` and per-image statistics."""

    path: Path
    label: str
    seed: int | None
    metrics: dict[str, Any]
    per_image: PerImageStats | None


def evaluation_dir(path: Path) -> Path:
    """The evaluation folder of ``path`` (itself, or a training run's ``evaluation/``)."""
    path = Path(path)
    for candidate in (path / EVALUATION_DIR, path):
        metrics = candidate / METRICS_FILE
        if metrics.is_file() and "curves" in json.loads(metrics.read_text(encoding="utf-8")):
            return candidate
    raise FileNotFoundError(
        f"{path}: not an evaluation folder (expected {METRICS_FILE} written by `wsol evaluate`, here or in "
        f"{EVALUATION_DIR}/)"
    )


def load_run(path: Path) -> Run:
    """A run's evaluation (``metrics.json``, per-image statistics when present) from its folder."""
    folder = evaluation_dir(path)
    try:
        metrics = json.loads((folder / METRICS_FILE).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{folder / METRICS_FILE}: not valid JSON ({err})") from None
    provenance = metrics.get("provenance") or {}
    per_image_path = folder / PER_IMAGE_FILE
    per_image = PerImageStats.load(per_image_path) if per_image_path.is_file() else None
    label = provenance.get("label") or Path(path).name
    return Run(folder, str(label), provenance.get("seed"), metrics, per_image)


def metric_value(metrics: dict[str, Any], column: Column, oracle: bool = False) -> float | None:
    """The column's figure: at the validation τ (None without one) or, with ``oracle``, the split's own."""
    source = metrics if oracle or not column.tau else (metrics.get("val_tau") or {}).get("metrics", {})
    value = source.get(column.key)
    if isinstance(value, dict):
        value = value.get("50", value.get(50))  # type: ignore[call-overload]
    return None if value is None else float(value)


def group_runs(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """Runs grouped by label (one method, several seeds), in the order met."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.label, []).append(run)
    return groups


def _stats(values: list[float | None]) -> dict[str, Any]:
    present = [v for v in values if v is not None]
    if not present:
        return {"mean": None, "sd": None, "n": 0, "values": values}
    sd = float(np.std(present, ddof=1)) if len(present) > 1 else None
    return {"mean": float(np.mean(present)), "sd": sd, "n": len(present), "values": values}


def _protocol(runs: Sequence[Run]) -> str:
    """``validation`` when every run has figures at the validation τ, ``oracle`` when none has, else
    ``mixed``."""
    has = {"val_tau" in run.metrics for run in runs}
    return "mixed" if len(has) > 1 else ("validation" if has == {True} else "oracle")


def summarize(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Per method: its runs, seeds and, per column, mean / sd / n at the validation τ and the oracle τ."""
    out = []
    for label, members in group_runs(runs).items():
        metrics: dict[str, Any] = {}
        for column in COLUMNS:
            entry = {"value": _stats([metric_value(r.metrics, column) for r in members])}
            if column.tau:
                entry["oracle"] = _stats([metric_value(r.metrics, column, oracle=True) for r in members])
            metrics[column.key] = entry
        out.append(
            {
                "label": label,
                "tau": _protocol(members),
                "runs": [str(r.path) for r in members],
                "seeds": [r.seed for r in members],
                "metrics": metrics,
            }
        )
    return out


def per_image_values(run: Run) -> dict[str, np.ndarray]:
    """The run's per-image values at its headline τ (``wsol.evaluation.protocol.headline_indices``)."""
    assert run.per_image is not None
    values = run.per_image.values_at(headline_indices(run.metrics))
    values["top1_err"] = 100 - values["top1_acc"]
    return values


def _resample_weights(n: int, resamples: int, seed: int) -> np.ndarray:
    """(1 + resamples, n) multiplicities: row 0 is the sample itself, the others bootstrap resamples."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(resamples, n))
    weights = np.zeros((resamples + 1, n))
    weights[0] = 1
    np.add.at(weights, (np.repeat(np.arange(1, resamples + 1), n), draws.ravel()), 1)
    return weights


def _statistic(
    run: Run, values: dict[str, np.ndarray], key: str, order: np.ndarray, weights: np.ndarray
) -> np.ndarray | None:
    """The metric ``key`` of ``run`` (per-image ``values``) on every weighted resample of its images
    ``order`` (None if undefined)."""
    assert run.per_image is not None
    if key == "pxap":
        has = run.per_image.has_mask[order]
        hist = run.per_image.hist[order].astype(np.float64)
        if not has.any() or hist[:, 0].sum() == 0:
            return None
        positive, negative = weights @ hist[:, 0], weights @ hist[:, 1]
        return np.array(
            [pxap(p, q)[0] if p.sum() > 0 else np.nan for p, q in zip(positive, negative, strict=True)]
        )
    if key not in values:
        return None
    picked = values[key][order]
    valid = ~np.isnan(picked)
    if not valid.any():
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights @ np.where(valid, picked, 0.0)) / (weights @ valid)


def _common_images(runs: Sequence[Run]) -> list[str]:
    first = runs[0].per_image
    assert first is not None
    shared = set(first.image_id.tolist())
    for run in runs[1:]:
        assert run.per_image is not None
        shared &= set(run.per_image.image_id.tolist())
    return [i for i in first.image_id.tolist() if i in shared]


def paired_bootstrap(
    a: Sequence[Run], b: Sequence[Run], *, resamples: int = 2000, seed: int = 0
) -> dict[str, Any] | None:
    """``a − b`` for every column with a per-image key: the difference on the images both were evaluated
    on and its percentile-bootstrap 95 % interval; None when a run lacks per-image statistics."""
    runs = [*a, *b]
    if any(run.per_image is None for run in runs):
        return None
    images = _common_images(runs)
    if len(images) < 2:
        return None
    weights = _resample_weights(len(images), resamples, seed)
    orders, values = {}, {}
    for run in runs:
        values[id(run)] = per_image_values(run)
        assert run.per_image is not None
        position = {image: i for i, image in enumerate(run.per_image.image_id.tolist())}
        orders[id(run)] = np.array([position[image] for image in images])
    result: dict[str, Any] = {}
    for column in COLUMNS:
        if column.per_image is None:
            continue
        sides = []
        for group in (a, b):
            stats = [
                _statistic(run, values[id(run)], column.per_image, orders[id(run)], weights) for run in group
            ]
            sides.append(None if any(s is None for s in stats) else np.mean(stats, axis=0))
        if sides[0] is None or sides[1] is None:
            continue
        difference = sides[0] - sides[1]
        low, high = np.nanpercentile(difference[1:], [2.5, 97.5])
        result[column.key] = {"difference": float(difference[0]), "low": float(low), "high": float(high)}
    return {"n_images": len(images), "resamples": resamples, "tau": _protocol(runs), "metrics": result}


def compare(runs: Sequence[Run], *, resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """The JSON document of ``wsol compare``: ``methods`` (:func:`summarize`) and ``paired`` differences."""
    if not runs:
        raise ValueError("compare: expected at least one run")
    groups = group_runs(runs)
    paired = []
    for first, second in combinations(groups, 2):
        outcome = paired_bootstrap(groups[first], groups[second], resamples=resamples, seed=seed)
        if outcome is not None:
            paired.append({"a": first, "b": second, **outcome})
    return {"methods": summarize(runs), "paired": paired, "columns": [c.__dict__ for c in COLUMNS]}


def _cell(stats: dict[str, Any]) -> str:
    if stats["mean"] is None:
        return "n/a"
    return f"{stats['mean']:.2f}" + (f" ± {stats['sd']:.2f}" if stats["sd"] is not None else "")


def markdown(document: dict[str, Any]) -> str:
    """Markdown: metrics (mean ± sd over seeds; validation τ, oracle beside) and paired differences."""
    titles = []
    for column in COLUMNS:
        titles.append(column.title + (" (val τ)" if column.tau else ""))
        if column.tau:
            titles.append(column.title + " (oracle τ)")
    lines = [
        "| method | seeds | " + " | ".join(titles) + " |",
        "|" + "---|" * (len(titles) + 2),
    ]
    for method in document["methods"]:
        cells = []
        for column in COLUMNS:
            entry = method["metrics"][column.key]
            cells.append(_cell(entry["value"]))
            if column.tau:
                cells.append(_cell(entry["oracle"]))
        seeds = ",".join("?" if s is None else str(s) for s in method["seeds"])
        lines.append(f"| {method['label']} | {seeds} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    if document["paired"]:
        keys = [c for c in COLUMNS if c.per_image is not None]
        text += (
            "\nPaired differences A − B on the same images, 95 % bootstrap interval over images (τ: "
            "validation where every run has one, else oracle):\n\n"
            "| A − B | images | τ | "
            + " | ".join(c.title for c in keys)
            + " |\n"
            + "|"
            + "---|" * (len(keys) + 3)
        )
        for pair in document["paired"]:
            cells = []
            for column in keys:
                entry = pair["metrics"].get(column.key)
                cells.append(
                    "n/a"
                    if entry is None
                    else f"{entry['difference']:+.2f} [{entry['low']:+.2f}, {entry['high']:+.2f}]"
                )
            head = f"\n| {pair['a']} − {pair['b']} | {pair['n_images']} | {pair['tau']} | "
            text += head + " | ".join(cells) + " |"
        text += "\n"
    return text
