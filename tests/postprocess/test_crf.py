"""Dense-CRF refinement (min-max entropy post-processing, research note §3 CRF table)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from wsol.postprocess import CRF_PRESETS, refine_batch, refine_mask, refine_masks

pytest.importorskip("pydensecrf.densecrf")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / np.logical_or(a, b).sum())


def _toy(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A bright disc on a dark textured background, and a blurred, shifted, too-large probability map."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:48, :64]
    truth = (yy - 24) ** 2 + (xx - 30) ** 2 <= 12**2
    image = np.where(truth[..., None], 200, 40) + rng.integers(-15, 16, size=(48, 64, 3))
    blob = ((yy - 22) ** 2 + (xx - 33) ** 2 <= 16**2).astype(float)
    prob = np.clip(ndimage.gaussian_filter(blob, 5) * 0.9 + 0.05, 0, 1)
    return image.astype(np.uint8), prob, truth


@pytest.mark.parametrize("preset", ["glas", "natural"])
def test_crf_fixes_a_blurry_mask(preset: str) -> None:
    image, prob, truth = _toy()
    before = _iou(prob > 0.5, truth)
    after = _iou(refine_mask(image, prob, CRF_PRESETS[preset]), truth)
    assert before < 0.8
    assert after > before + 0.1


def test_presets_match_the_reference_table() -> None:
    glas, natural = CRF_PRESETS["glas"], CRF_PRESETS["natural"]
    assert (glas.iterations, glas.gaussian_sxy, glas.bilateral_sxy, glas.bilateral_srgb) == (
        2,
        (3, 3),
        (13, 13),
        (3, 3, 3),
    )
    assert (natural.iterations, natural.gaussian_sxy, natural.bilateral_sxy, natural.bilateral_srgb) == (
        5,
        (5, 5),
        (19, 19),
        (11, 11, 11),
    )
    assert (glas.gaussian_compat, glas.bilateral_compat) == (3, 10)


def test_confident_uniform_map_is_kept_and_batch_matches_single() -> None:
    image, prob, _ = _toy(1)
    ones = refine_mask(image, np.full(prob.shape, 0.999))
    assert ones.all()
    batch = refine_masks(np.stack([image, image]), np.stack([prob, np.full(prob.shape, 0.001)]))
    assert np.array_equal(batch[0], refine_mask(image, prob))
    assert not batch[1].any()


def test_refine_batch_denormalizes_model_inputs() -> None:
    image, prob, _ = _toy(2)
    normalized = (torch.from_numpy(image).permute(2, 0, 1).float() / 255 - 0.5) / 0.5
    maps = torch.from_numpy(prob).float()
    refined = refine_batch(normalized.unsqueeze(0), maps.unsqueeze(0), CRF_PRESETS["glas"])
    assert refined.dtype == torch.bool and refined.shape == (1, 48, 64)
    expected = refine_mask(image, maps.numpy(), CRF_PRESETS["glas"])
    assert np.array_equal(refined[0].numpy(), expected)
    with pytest.raises(ValueError, match="expected images"):
        refine_batch(normalized, maps)


def test_bad_inputs_are_named() -> None:
    image, prob, _ = _toy()
    with pytest.raises(ValueError, match="image must be a uint8"):
        refine_mask(image.astype(np.float32), prob)
    with pytest.raises(ValueError, match="prob must have"):
        refine_mask(image, prob[:10])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        refine_mask(image, prob * 3)
    with pytest.raises(ValueError, match="expected images"):
        refine_masks(image, prob)
