"""Using a trained checkpoint (loaded by :func:`wsol.methods.checkpoint.load_checkpoint`): localize images,
evaluate a dataset split.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from wsol.data.dataset import WSOLDataset, collate
from wsol.data.images import read_image
from wsol.data.transforms import JointTransform, TransformConfig, build_transforms
from wsol.io import atomic_write_text
from wsol.methods.base import Prediction, WSOLMethod
from wsol.methods.checkpoint import LoadedCheckpoint, load_checkpoint


def eval_transform(config: Mapping[str, Any]) -> JointTransform:
    """The evaluation transform of a run config's ``data.transforms``."""
    return build_transforms(
        TransformConfig.from_dict(dict(config["data"].get("transforms") or {})), train=False
    )


def cam_predict(method: WSOLMethod, cam: str, images: Tensor, classes: Tensor | None) -> Prediction:
    """Maps of a post-hoc extractor (``wsol.cams``) on the method's classifier, for ``classes`` or argmax."""
    from wsol.cams import build_extractor

    cam_model = getattr(method, "cam_model", None)
    if cam_model is None:
        raise ValueError(
            f"--cam {cam}: method {type(method).__name__} exposes no classifier for post-hoc CAMs"
        )
    model, layer = cam_model()
    with build_extractor(cam, model, layer) as extractor:
        maps = extractor(images, classes, upsample_to="input")
        logits = extractor.last_logits
    logits = getattr(logits, "logits", logits)
    return Prediction(logits=logits.detach(), maps=maps.detach())


def _predict(method: WSOLMethod, images: Tensor, classes: Tensor | None, cam: str | None) -> Prediction:
    if cam is not None:
        return cam_predict(method, cam, images, classes)
    with torch.inference_mode():
        return method.predict(images, classes=classes)


def imagenet_method(backbone: str, **backbone_options: object) -> LoadedCheckpoint:
    """A classic-CAM method on ``backbone``'s ImageNet classifier (``wsol.models.imagenet_classifier``) with
    the matching evaluation transform (the backbone's normalisation, square ``imagenet_resolution``) and the
    ImageNet class names; channels-last, in eval mode."""
    from wsol.methods.cam_baseline import PoolingHeadMethod
    from wsol.models.imagenet import imagenet_class_names, imagenet_classifier

    classifier = imagenet_classifier(backbone, **backbone_options)
    method = PoolingHeadMethod.from_classifier(classifier).to(memory_format=torch.channels_last)
    net = classifier.backbone
    transforms = {
        "eval_resize": [net.imagenet_resolution] * 2,
        "mean": list(net.input_mean),
        "std": list(net.input_std),
    }
    return LoadedCheckpoint(method.eval(), {"data": {"transforms": transforms}}, list(imagenet_class_names()))


def mask_boxes(mask: np.ndarray) -> tuple[list[float] | None, list[list[float]]]:
    """``(largest, all)`` boxes ``x0, y0, x1, y1`` (continuous pixels) of the outer contours of a binary mask.

    The largest is the contour of largest polygon area (wsolevaluation's rule); ``None`` for an empty mask.
    """
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    boxes = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        boxes.append([float(x), float(y), float(x + w), float(y + h)])
    if not boxes:
        return None, []
    largest = int(np.argmax([cv2.contourArea(contour) for contour in contours]))
    return boxes[largest], boxes


@dataclass
class ImageLocalization:
    """One image's prediction at its original resolution."""

    path: Path
    predicted_class: int
    map_class: int
    probabilities: list[float]
    map: np.ndarray
    mask: np.ndarray
    threshold: float | None
    largest_box: list[float] | None
    boxes: list[list[float]]


def predict_images(
    method: WSOLMethod,
    config: Mapping[str, Any],
    paths: Sequence[Path],
    *,
    cam: str | None = None,
    threshold: float | None = None,
    target_class: int | None = None,
) -> Iterator[ImageLocalization]:
    """Localize each image (the predicted class, or ``target_class``): map resized to the original size,
    mask, contour boxes.

    The mask is the method's own decision (``Prediction.masks``) when it has one and ``threshold`` is None,
    otherwise ``map >= threshold`` (default 0.5).
    """
    transform = eval_transform(config)
    for path in paths:
        image = read_image(Path(path))
        height, width = image.shape[:2]
        tensor = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)
        empty = torch.zeros(1, height, width)
        inputs, _, _, _ = transform(tensor, empty, empty.bool(), torch.zeros(0, 4))
        classes = None if target_class is None else torch.tensor([target_class])
        prediction = _predict(method, inputs[None], classes, cam)
        probabilities = torch.softmax(prediction.logits[0].double(), dim=0)
        heatmap = prediction.maps[0].double().cpu().numpy()
        heatmap = np.clip(cv2.resize(heatmap, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
        if prediction.masks is not None and threshold is None:
            own = prediction.masks[0].cpu().numpy().astype(np.uint8)
            mask = cv2.resize(own, (width, height), interpolation=cv2.INTER_NEAREST) > 0
            used: float | None = None
        else:
            used = 0.5 if threshold is None else threshold
            mask = heatmap >= used
        largest, boxes = mask_boxes(mask)
        yield ImageLocalization(
            path=Path(path),
            predicted_class=int(probabilities.argmax()),
            map_class=int(probabilities.argmax()) if target_class is None else target_class,
            probabilities=[float(p) for p in probabilities],
            map=heatmap.astype(np.float32),
            mask=mask,
            threshold=used,
            largest_box=largest,
            boxes=boxes,
        )


def _evaluate(
    loader: DataLoader, predict: Callable[[dict[str, Any]], Prediction | Tensor], config: Any
) -> Any:
    """Run ``predict`` (a Prediction, or maps alone) over ``loader`` into ``WSOLEvaluator(config)``."""
    from wsol.evaluation import WSOLEvaluator

    evaluator = WSOLEvaluator(config)
    for batch in loader:
        output = predict(batch)
        maps, logits = (output.maps, output.logits) if isinstance(output, Prediction) else (output, None)
        evaluator.update_batch(maps.float(), batch, logits)
    return evaluator.compute()


def _write_metrics(out_dir: Path, provenance: dict[str, Any], result: Any) -> None:
    payload = {**provenance, **result.to_dict()}
    atomic_write_text(
        Path(out_dir) / "metrics.json", json.dumps(payload, indent=2, sort_keys=True, default=float) + "\n"
    )


def evaluate_checkpoint(
    checkpoint: Path, data_root: Path, split: str, cam: str | None, out_dir: Path, config: Any
) -> Any:
    """Evaluate a checkpoint on ``split`` of ``data_root`` with ``WSOLEvaluator(config)`` (GT-class maps).

    ``cam`` selects a post-hoc extractor of ``wsol.cams`` on the method's classifier; ``None`` uses the
    method's own maps. Writes ``out_dir/metrics.json`` and returns the ``EvaluationResult``.
    """
    loaded = load_checkpoint(checkpoint)
    method, run_config = loaded.method, loaded.config
    dataset = WSOLDataset(Path(data_root), split, eval_transform(run_config))
    if dataset.num_classes != method.num_classes:
        raise ValueError(
            f"{checkpoint}: the model was trained for {method.num_classes} classes, but the dataset "
            f"{data_root} has {dataset.num_classes} classes; evaluate it on a dataset with the same classes"
        )
    data = run_config["data"]
    loader = DataLoader(
        dataset, batch_size=int(data.get("eval_batch_size") or data["batch_size"]), collate_fn=collate
    )
    result = _evaluate(loader, lambda batch: _predict(method, batch["image"], batch["label"], cam), config)
    provenance = {"checkpoint": str(checkpoint), "data": str(data_root), "split": split, "cam": cam}
    _write_metrics(out_dir, provenance, result)
    return result


def evaluate_baseline(
    name: str, data_root: Path, split: str, out_dir: Path, config: Any, frame_size: int
) -> Any:
    """Evaluate a trivial baseline of ``wsol.methods.baselines`` on ``split``, through the same loader and
    evaluator as a checkpoint; images of varying sizes get the default frame (``wsol.data.size_policy``)."""
    from wsol.data.size_policy import resolve_size_policy
    from wsol.methods.baselines import BASELINES

    if name not in BASELINES:
        raise ValueError(f"--baseline: unknown baseline {name!r}; expected one of {sorted(BASELINES)}")
    transforms = resolve_size_policy({}, Path(data_root), [split], frame_size)
    transform = build_transforms(TransformConfig.from_dict(transforms), train=False)
    loader = DataLoader(WSOLDataset(Path(data_root), split, transform), batch_size=32, collate_fn=collate)
    result = _evaluate(loader, lambda batch: BASELINES[name](batch["image"]), config)
    provenance = {"baseline": name, "data": str(data_root), "split": split, "transforms": transforms}
    _write_metrics(out_dir, provenance, result)
    return result
