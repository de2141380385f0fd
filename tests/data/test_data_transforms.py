"""Joint transforms keep image, mask, ignore and boxes aligned: hand-computed cases, hypothesis invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsol.data.dataset import boxes_from_mask
from wsol.data.transforms import (
    PRESETS,
    TransformConfig,
    aspect_size,
    build_transforms,
    denormalize,
    reflect_pad_sample,
    resize_sample,
)


def _rect_sample(height: int, width: int, rects: list[tuple[int, int, int, int]]):
    """A black image with white rectangles (x0, y0, x1, y1), its mask, an ignore map and the boxes."""
    image = torch.zeros(3, height, width)
    mask = torch.zeros(1, height, width)
    for x0, y0, x1, y1 in rects:
        image[:, y0:y1, x0:x1] = 1.0
        mask[:, y0:y1, x0:x1] = 1.0
    ignore = torch.zeros(1, height, width, dtype=torch.bool)
    ignore[:, :, :2] = True  # a left band, to check that ignore travels with the image too
    boxes = torch.tensor(rects, dtype=torch.float32).reshape(-1, 4)
    return image, mask, ignore, boxes


def _sorted_rows(boxes: np.ndarray) -> list[tuple[float, ...]]:
    return sorted(tuple(float(v) for v in row) for row in np.asarray(boxes).reshape(-1, 4))


def test_hflip_of_a_known_rectangle() -> None:
    sample = _rect_sample(8, 10, [(1, 2, 5, 4)])
    config = TransformConfig(hflip=True, mean=(0, 0, 0), std=(1, 1, 1))
    transform = build_transforms(config, train=True)
    flipped = [s for s in range(40) if transform(*sample, seed=s)[0][0, 2, 8] == 1.0]
    assert flipped, "p = 0.5 flips: some seed must flip"
    image, mask, ignore, boxes = transform(*sample, seed=flipped[0])
    assert boxes.tolist() == [[5.0, 2.0, 9.0, 4.0]]  # x -> 10 - x
    assert torch.equal(mask[0].nonzero().min(0).values, torch.tensor([2, 5]))
    assert ignore[0, :, 8:].all() and not ignore[0, :, :8].any()


def test_rot90_keeps_boxes_exact() -> None:
    sample = _rect_sample(10, 10, [(1, 2, 5, 4)])
    transform = build_transforms(TransformConfig(rot90=True), train=True)
    seen = set()
    for seed in range(30):
        _, mask, _, boxes = transform(*sample, seed=seed)
        assert _sorted_rows(boxes) == _sorted_rows(boxes_from_mask(mask[0].numpy()))
        seen.add(tuple(boxes[0].tolist()))
    # the four rotations of the box [1, 2, 5, 4] in a 10 x 10 image
    assert seen == {(1.0, 2.0, 5.0, 4.0), (2.0, 5.0, 4.0, 9.0), (5.0, 6.0, 9.0, 8.0), (6.0, 1.0, 8.0, 5.0)}


def test_reflect_padding_adds_mirrored_boxes() -> None:
    sample = _rect_sample(10, 12, [(1, 1, 4, 3)])
    image, mask, ignore, boxes = reflect_pad_sample(sample, 2, 3)
    assert image.shape == (3, 14, 18)
    # torch 'reflect' mirrors about the centre of the edge pixel: x -> 1 - x, y -> 1 - y, then the pad shifts
    assert _sorted_rows(boxes) == _sorted_rows(boxes_from_mask(mask[0].numpy()))
    assert (4.0, 3.0, 7.0, 5.0) in _sorted_rows(boxes)  # the original, shifted by the padding
    assert (0.0, 0.0, 3.0, 2.0) in _sorted_rows(boxes)  # the corner copy, clipped to the canvas


def test_resize_keeps_aspect_ratio_and_scales_boxes() -> None:
    assert aspect_size(300, 200, 500) == (750, 500)
    sample = _rect_sample(20, 40, [(4, 2, 12, 10)])
    transform = build_transforms(TransformConfig(image_size=10), train=False)
    image, mask, _, boxes = transform(*sample)
    assert image.shape == (3, 10, 20)
    assert boxes.tolist() == [[2.0, 1.0, 6.0, 5.0]]
    assert _sorted_rows(boxes) == _sorted_rows(boxes_from_mask(mask[0].numpy()))


def test_upscale_only_when_smaller() -> None:
    transform = build_transforms(TransformConfig(upscale_small_side=16), train=False)
    assert transform(*_rect_sample(8, 12, [(1, 1, 3, 3)]))[0].shape == (3, 16, 24)
    assert transform(*_rect_sample(20, 30, [(1, 1, 3, 3)]))[0].shape == (3, 20, 30)


def test_eval_resize_to_fixed_size_and_normalisation_round_trip() -> None:
    sample = _rect_sample(20, 40, [(4, 2, 12, 10)])
    config = PRESETS["wsolevaluation"]
    image, mask, _, boxes = build_transforms(config, train=False)(*sample)
    assert image.shape == (3, 224, 224) and mask.shape == (1, 224, 224)
    assert torch.allclose(boxes, torch.tensor([[4 * 224 / 40, 2 * 224 / 20, 12 * 224 / 40, 10 * 224 / 20]]))
    restored = denormalize(image, config.mean, config.std)
    assert torch.allclose(restored[:, 50:60, 40:50], torch.ones(3, 10, 10), atol=1e-5)
    assert torch.allclose(restored[:, 150:, 150:], torch.zeros(3, 74, 74), atol=1e-5)


def test_same_seed_same_draw_different_seed_other_draws() -> None:
    sample = _rect_sample(32, 32, [(3, 4, 12, 20)])
    config = TransformConfig.from_dict({"preset": "glas", "crop_size": 24})
    transform = build_transforms(config, train=True)
    first = transform(*sample, seed=7)
    again = transform(*sample, seed=7)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    others = {tuple(transform(*sample, seed=s)[3].flatten().tolist()) for s in range(8)}
    assert len(others) > 1


def test_crop_larger_than_image_is_a_clear_error() -> None:
    transform = build_transforms(TransformConfig(crop_size=40), train=True)
    with pytest.raises(ValueError, match=r"16x16 after resizing/padding, smaller than crop_size=40"):
        transform(*_rect_sample(16, 16, [(1, 1, 3, 3)]))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"crop_size": 0}, "crop_size: expected a positive integer"),
        ({"pad_fraction": 1.5}, r"pad_fraction: expected a value in \[0, 1\)"),
        ({"color_jitter": (0.5, 0.5)}, "color_jitter: expected"),
        ({"image_size": 10, "upscale_small_side": 10}, "not both"),
        ({"sizes": 3}, r"unknown keys \['sizes'\]"),
        ({"preset": "imagenet"}, "unknown transform preset 'imagenet'"),
    ],
)
def test_config_errors_name_the_field(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TransformConfig.from_dict(values)


def test_from_dict_starts_from_a_preset() -> None:
    config = TransformConfig.from_dict({"preset": "cub", "crop_size": 64, "mean": [0.1, 0.2, 0.3]})
    assert config.upscale_small_side == 500 and config.crop_size == 64 and config.hflip
    assert config.mean == (0.1, 0.2, 0.3)


@st.composite
def _scenes(draw: st.DrawFn):
    height = draw(st.integers(16, 40))
    width = draw(st.integers(16, 40))
    rects = []
    for _ in range(draw(st.integers(1, 2))):
        x0 = draw(st.integers(1, width - 4))
        y0 = draw(st.integers(1, height - 4))
        rects.append((x0, y0, draw(st.integers(x0 + 1, width - 1)), draw(st.integers(y0 + 1, height - 1))))
    # rectangles one pixel off the border and apart, so that components and boxes match one to one
    mask = np.zeros((height, width), np.uint8)
    for x0, y0, x1, y1 in rects:
        if mask[max(0, y0 - 1) : y1 + 1, max(0, x0 - 1) : x1 + 1].any():
            rects = rects[:1]
            break
        mask[y0:y1, x0:x1] = 1
    return height, width, rects


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scene=_scenes(),
    pad=st.sampled_from([0.0, 0.25, 0.5]),
    jitter=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_joint_transform_keeps_image_mask_boxes_aligned(scene, pad: float, jitter: bool, seed: int) -> None:
    height, width, rects = scene
    crop = min(height, width) - 2
    config = TransformConfig(
        pad_fraction=pad,
        crop_size=crop,
        hflip=True,
        vflip=True,
        rot90=True,
        color_jitter=(0.5, 0.5, 0.5, 0.05) if jitter else None,
    )
    image, mask, ignore, boxes = build_transforms(config, train=True)(
        *_rect_sample(height, width, rects), seed=seed
    )
    assert (
        image.shape == (3, crop, crop) and mask.shape == (1, crop, crop) and ignore.shape == (1, crop, crop)
    )
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    # the mask still marks exactly the bright pixels (jitter changes values, never which pixel is bright)
    grey = denormalize(image).mean(0)
    if mask.any() and (mask == 0).any():
        assert grey[mask[0] > 0].min() > grey[mask[0] == 0].max()
    # boxes are exactly the boxes of the transformed mask's components
    assert _sorted_rows(boxes) == _sorted_rows(boxes_from_mask(mask[0].numpy()))


def test_resize_sample_mask_stays_binary() -> None:
    sample = _rect_sample(17, 23, [(2, 3, 9, 11)])
    _, mask, ignore, boxes = resize_sample(sample, (40, 31))
    assert set(mask.unique().tolist()) == {0.0, 1.0} and ignore.dtype == torch.bool
    assert torch.allclose(boxes, torch.tensor([[2 * 31 / 23, 3 * 40 / 17, 9 * 31 / 23, 11 * 40 / 17]]))
