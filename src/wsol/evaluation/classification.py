"""Top-k classification correctness (top-1 / top-5 accuracy and error, the field's classification metrics)."""

from __future__ import annotations

import numpy as np

from wsol.evaluation.arrays import ArrayLike, to_numpy


def topk_correct(logits: ArrayLike, labels: ArrayLike, k: int) -> np.ndarray:
    """Bool (B,): whether ``labels`` is among the ``k`` highest ``logits`` (B, K); ``k`` is capped at K.

    Ties go to the lower class index (stable sort), so a constant logit row counts class 0 as top-1.
    """
    logits, labels = to_numpy(logits), to_numpy(labels)
    if logits.ndim != 2:
        raise ValueError(f"logits: expected shape (B, K), got {tuple(logits.shape)}")
    if labels.shape != (logits.shape[0],):
        raise ValueError(f"labels: expected shape ({logits.shape[0]},), got {tuple(labels.shape)}")
    num_classes = logits.shape[1]
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels: expected values in [0, {num_classes - 1}], got {labels.tolist()}")
    order = np.argsort(-logits.astype(np.float32), axis=1, kind="stable")
    top = order[:, : min(k, num_classes)]
    return (top == labels.astype(np.int64)[:, None]).any(axis=1)
