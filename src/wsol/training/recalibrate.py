"""BatchNorm recalibration: re-estimate a trained model's running statistics from clean images.

Methods that also forward masked or erased images in training mode (min-max entropy: X⁺, X⁻, X^t; Belharbi et
al., arXiv 1907.12934 §3) leave BatchNorm running statistics that mix those images with clean ones, while
inference sees clean images only. Recalibration replaces them with the plain average over clean images
(``momentum=None``), without any gradient step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from wsol.data.dataset import WSOLDataset, collate
from wsol.methods import WSOLMethod
from wsol.methods.checkpoint import load_checkpoint, read_checkpoint
from wsol.methods.minmax_entropy import MinMaxEntropy
from wsol.training.checkpoint import AtomicCheckpointIO
from wsol.training.inference import eval_transform
from wsol.training.run import resolve_data_root

__all__ = ["clean_forward", "recalibrate_batchnorm", "recalibrate_checkpoint"]


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module, forward: Callable[[Tensor], Any], batches: Iterable[Tensor]
) -> int:
    """Reset the BatchNorm running statistics of ``model`` and re-estimate them as the average over
    ``batches`` of ``forward(batch)``. Only BatchNorm layers run in training mode meanwhile (dropout stays
    off); the modes and momenta of every layer are restored. Returns the number of images seen."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not layers:
        raise ValueError("recalibrate_batchnorm: the model has no BatchNorm layer")
    modes = {m: m.training for m in model.modules()}
    momenta = [layer.momentum for layer in layers]
    model.eval()
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average over the batches
        layer.train()
    seen = 0
    try:
        for images in batches:
            forward(images)
            seen += images.shape[0]
    finally:
        for module, mode in modes.items():
            module.training = mode
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
    if seen == 0:
        raise ValueError("recalibrate_batchnorm: no images were given")
    return seen


def clean_forward(method: WSOLMethod) -> Callable[[Tensor], Any]:
    """The forward that inference runs on clean images: min-max entropy's localizer, else ``predict``."""
    if isinstance(method, MinMaxEntropy):
        return method.localize
    return method.predict


def recalibrate_checkpoint(
    checkpoint: Path,
    out: Path,
    data_root: Path | None = None,
    batch_size: int = 32,
    max_images: int | None = None,
) -> int:
    """Recalibrate the BatchNorm statistics of a ``wsol train`` checkpoint on clean training images of
    ``data_root`` (default: the run's own data) and write the result to ``out`` (atomically). Returns the
    number of images used."""
    loaded = load_checkpoint(checkpoint)
    method, config = loaded.method, loaded.config
    root = Path(data_root) if data_root is not None else resolve_data_root(config["data"])
    dataset: Dataset[Any] = WSOLDataset(root, "train", eval_transform(config))
    if max_images is not None:
        dataset = Subset(dataset, range(min(max_images, len(dataset))))
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    seen = recalibrate_batchnorm(method, clean_forward(method), (batch["image"] for batch in loader))
    saved = read_checkpoint(checkpoint)
    for name, value in method.state_dict().items():
        saved["state_dict"][f"method.{name}"] = value.clone()
    AtomicCheckpointIO().save_checkpoint(saved, out)
    return seen
