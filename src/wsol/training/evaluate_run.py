"""The full evaluation of a checkpoint: τ chosen on validation and applied to test, per-image statistics,
provenance and (optionally) the predictions in standard formats.

Output folder::

    metrics.json       EvaluationResult.to_dict() + "val_tau" (figures at the validation τ) + "provenance"
    per_image.npz      wsol.evaluation.per_image.PerImageStats (for `wsol compare` / `wsol report`)
    per_image.csv      per-image values at the validation τ (or the oracle τ without a validation split)
    predictions/       with export: maps/<id>.npy, masks/<id>.png, predictions_coco.json
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from wsol.data.dataset import WSOLDataset, collate
from wsol.evaluation import EvaluationResult, EvaluatorConfig, WSOLEvaluator
from wsol.evaluation import parity as ref
from wsol.evaluation.export import COCO_FILE, ImagePrediction, write_coco, write_map, write_mask
from wsol.evaluation.protocol import at_validation_tau, tau_indices, write_evaluation
from wsol.evaluation.provenance import provenance_record
from wsol.methods.checkpoint import LoadedCheckpoint, load_checkpoint
from wsol.training.inference import _predict, eval_transform, mask_boxes

PREDICTIONS_DIR = "predictions"


@dataclass(frozen=True)
class EvaluationRequest:
    """What to evaluate and where to write it; ``val_split`` None evaluates ``split`` alone (oracle τ)."""

    checkpoint: Path
    data_root: Path
    split: str
    out_dir: Path
    config: EvaluatorConfig
    cam: str | None = None
    val_split: str | None = "val"
    export: bool = False
    label: str | None = None
    per_image: bool = True


Batch = dict[str, Any]


def _evaluate(
    loaded: LoadedCheckpoint,
    request: EvaluationRequest,
    split: str,
    config: EvaluatorConfig,
    on_batch: Callable[[Batch, Any], None] | None = None,
) -> WSOLEvaluator:
    dataset = WSOLDataset(Path(request.data_root), split, eval_transform(loaded.config))
    data = loaded.config["data"]
    loader = DataLoader(
        dataset, batch_size=int(data.get("eval_batch_size") or data["batch_size"]), collate_fn=collate
    )
    evaluator = WSOLEvaluator(config)
    for batch in loader:
        prediction = _predict(loaded.method, batch["image"], batch["label"], request.cam)
        evaluator.update_batch(prediction.maps.float(), batch, prediction.logits)
        if on_batch is not None:
            on_batch(batch, prediction)
    return evaluator


class _Exporter:
    """Writes the evaluated maps (as the evaluator sees them), masks at the pixel τ, boxes at the box τ."""

    def __init__(self, out_dir: Path, config: EvaluatorConfig, pixel_tau: float, box_tau: float) -> None:
        self.out_dir, self.config = out_dir, config
        self.pixel_tau, self.box_tau = pixel_tau, box_tau
        self.predictions: list[ImagePrediction] = []

    def _prepare(self, scoremap: np.ndarray) -> np.ndarray:
        if self.config.frame is not None:
            scoremap = ref.resize_scoremap(scoremap, self.config.frame)
        return ref.normalize_scoremap(scoremap) if self.config.normalize else scoremap

    def __call__(self, batch: Batch, prediction: Any) -> None:
        probabilities = torch.softmax(prediction.logits.detach().double().cpu(), dim=1)
        maps = prediction.maps.detach().float().cpu().numpy()
        for i, image_id in enumerate(batch["image_id"]):
            scoremap = self._prepare(maps[i].reshape(maps.shape[-2:]))
            mask = scoremap >= self.pixel_tau
            _, boxes = mask_boxes(scoremap >= self.box_tau)
            write_map(self.out_dir / "maps", image_id, scoremap)
            write_mask(self.out_dir / "masks", image_id, mask)
            height, width = scoremap.shape
            category = int(probabilities[i].argmax())
            score = float(probabilities[i, category])
            self.predictions.append(ImagePrediction(image_id, width, height, category, score, boxes, mask))


def evaluate_run(request: EvaluationRequest) -> tuple[dict[str, Any], EvaluationResult]:
    """Evaluate, write the output folder (module docstring); returns the ``metrics.json`` payload and the
    test split's result."""
    loaded = load_checkpoint(request.checkpoint)
    val_result: EvaluationResult | None = None
    if request.val_split is not None and request.val_split != request.split:
        val_result = _evaluate(loaded, request, request.val_split, replace(request.config, per_image=False))
        val_result = val_result.compute()
    exporter = None
    if request.export:
        chosen = {}
        if val_result is not None:
            chosen = {k: val_result.curves["tau"][i] for k, i in tau_indices(val_result).items()}
        default = request.config.pixel_threshold
        exporter = _Exporter(
            Path(request.out_dir) / PREDICTIONS_DIR,
            request.config,
            chosen.get("f1_pos", default),
            chosen.get("box_acc@50", default),
        )
    config = replace(request.config, per_image=request.per_image)
    evaluator = _evaluate(loaded, request, request.split, config, exporter)
    result = evaluator.compute()
    payload: dict[str, Any] = {
        "checkpoint": str(request.checkpoint),
        "data": str(request.data_root),
        "split": request.split,
        "cam": request.cam,
        **result.to_dict(),
    }
    if val_result is not None:
        payload["val_tau"] = {"split": request.val_split, **at_validation_tau(val_result, result)}
    payload["provenance"] = provenance_record(
        evaluator=request.config,
        data=Path(request.data_root),
        split=request.split,
        source={"checkpoint": str(Path(request.checkpoint).absolute()), "cam": request.cam},
        label=request.label or default_label(loaded.config, request.cam),
        run_config=loaded.config,
    )
    write_evaluation(Path(request.out_dir), payload, evaluator)
    if exporter is not None:
        write_coco(
            Path(request.out_dir) / PREDICTIONS_DIR / COCO_FILE, exporter.predictions, loaded.class_names
        )
    return payload, result


def default_label(run_config: dict[str, Any], cam: str | None) -> str:
    """``method[/head][+cam]``, e.g. ``cam/gap`` or ``cam/wildcat+gradcampp``."""
    method = run_config["method"]
    label = str(method["name"])
    head = (method.get("options") or {}).get("head")
    if head:
        label += f"/{head}"
    return label + (f"+{cam}" if cam else "")
