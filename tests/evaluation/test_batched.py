"""Batched evaluation: numpy and tensor inputs agree, one batch equals its maps one by one."""

from __future__ import annotations

import numpy as np
import torch

from wsol.evaluation import EvaluatorConfig, WSOLEvaluator, box_correctness
from wsol.evaluation.boxes import box_correctness_batch
from wsol.evaluation.parity import quantize

TAUS = np.arange(0, 1, 0.01)
DELTAS = np.array([0.3, 0.5, 0.7])


def _maps(seed: int, n: int = 5, size: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.random((n, 1, 4, 4)).astype(np.float32)
    maps = torch.nn.functional.interpolate(torch.from_numpy(coarse), size=(size, size), mode="bilinear")
    return maps[:, 0].numpy()


def test_batch_of_maps_equals_each_map_alone() -> None:
    maps = _maps(0)
    gts = [
        np.array([[2, 3, 9, 12]]),
        np.array([[0, 0, 19, 19], [5, 5, 8, 8]]),
        *[np.array([[4, 4, 15, 10]])] * 3,
    ]
    quantized = np.stack([quantize(m) for m in maps])
    for engine in ("sweep", "trace"):
        largest, every = box_correctness_batch(quantized, TAUS, gts, DELTAS, engine=engine)
        assert largest.shape == every.shape == (5, 3, len(TAUS))
        for i in range(5):
            one_largest, one_every = box_correctness(quantized[i], TAUS, gts[i], DELTAS, engine=engine)
            np.testing.assert_array_equal(largest[i], one_largest)
            np.testing.assert_array_equal(every[i], one_every)


def test_numpy_and_tensor_inputs_give_the_same_metrics() -> None:
    maps = _maps(1)
    boxes = [np.array([[2.0, 3.0, 9.0, 12.0]])] * 5
    labels = np.array([0, 1, 2, 1, 0])
    logits = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    results = []
    for convert in (np.asarray, torch.from_numpy):
        evaluator = WSOLEvaluator(EvaluatorConfig(parity="wsolevaluation", cam_curve_interval=0.05))
        evaluator.update(
            convert(maps),
            masks=convert(maps > 0.5),
            boxes=[convert(b) for b in boxes],
            labels=convert(labels),
            logits=convert(logits),
        )
        results.append(evaluator.compute().to_dict())
    assert results[0] == results[1]
    assert results[0]["num_box_images"] == 5 and results[0]["pxap"] is not None
