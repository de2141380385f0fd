"""Joint image/mask/box transforms and the paper presets (min-max entropy notes §3, wsolevaluation).

A sample is transformed jointly: ``image`` (3, H, W) float in [0, 1], ``mask`` (1, H, W) float in {0, 1},
``ignore`` (1, H, W) bool and ``boxes`` (N, 4) ``x0, y0, x1, y1`` in continuous pixel coordinates (pixel ``i``
covers ``[i, i + 1)``). Order (train): resize keeping the aspect ratio → reflect padding → random crop →
colour jitter → flips → rotation by a multiple of 90° → normalisation. Eval: resize (or a fixed
``eval_resize``) → normalisation. ``frame`` resizes to a fixed square frame in both. Geometric steps are
exact torch index operations drawn from a per-sample seed (so the result of sample ``i`` does not depend on
the number of DataLoader workers); colour jitter is ``kornia.augmentation.ColorJitter``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import kornia.augmentation as K
import torch
import torch.nn.functional as F
from torch import Tensor

Sample = tuple[Tensor, Tensor, Tensor, Tensor]
"""``(image, mask, ignore, boxes)`` as described in the module docstring."""


@dataclass(frozen=True)
class TransformConfig:
    """Typed transform settings; every field maps to one YAML key (``TransformConfig.from_dict``).

    * ``image_size``: resize so that the smaller side equals it, up or down, keeping the aspect ratio
      (TMI code: 432).
    * ``upscale_small_side``: resize so that the smaller side equals it only when it is smaller
      (R1 CUB/OxF: 500).
    * ``pad_fraction``: reflect-pad each side by this fraction of the width/height (R1 GlaS: 0.5).
    * ``crop_size``: side of the square random training crop (R1: 480); ``None`` keeps the full image.
    * ``hflip``/``vflip``/``rot90``: random flips (p = 0.5) and rotation by k·90°, k uniform in 0..3.
    * ``color_jitter``: ``(brightness, contrast, saturation, hue)`` with torchvision's semantics (R1 GlaS:
      ``(0.5, 0.5, 0.5, 0.05)``).
    * ``mean``/``std``: normalisation (R1: 0.5 / 0.5 for every dataset).
    * ``eval_resize``: evaluation resizes the whole image to this fixed ``(height, width)`` (wsolevaluation:
      224 × 224) instead of applying ``image_size``/``upscale_small_side``.
    * ``frame``: training and evaluation resize the whole image to ``frame × frame`` first (aspect ratio not
      kept, as wsolevaluation's evaluation frame): the variable-size policy (``wsol.data.size_policy``).
    """

    image_size: int | None = None
    upscale_small_side: int | None = None
    pad_fraction: float = 0.0
    crop_size: int | None = None
    hflip: bool = False
    vflip: bool = False
    rot90: bool = False
    color_jitter: tuple[float, float, float, float] | None = None
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    eval_resize: tuple[int, int] | None = None
    frame: int | None = None

    def __post_init__(self) -> None:
        for name in ("image_size", "upscale_small_side", "crop_size", "frame"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(
                    f"TransformConfig.{name}: expected a positive integer or None, got {value!r}"
                )
        resizes = [name for name in ("image_size", "upscale_small_side", "frame") if getattr(self, name)]
        if len(resizes) > 1:
            raise ValueError(
                f"TransformConfig: set one of image_size, upscale_small_side or frame, not both: {resizes}"
            )
        if not 0.0 <= self.pad_fraction < 1.0:
            raise ValueError(
                f"TransformConfig.pad_fraction: expected a value in [0, 1), got {self.pad_fraction}"
            )
        if self.color_jitter is not None:
            jitter = tuple(float(v) for v in self.color_jitter)
            if len(jitter) != 4 or min(jitter) < 0 or jitter[3] > 0.5:
                raise ValueError(
                    "TransformConfig.color_jitter: expected (brightness, contrast, saturation, hue) >= 0 "
                    f"with hue <= 0.5, got {self.color_jitter!r}"
                )
            object.__setattr__(self, "color_jitter", jitter)
        for name in ("mean", "std"):
            values = tuple(float(v) for v in getattr(self, name))
            if len(values) != 3:
                raise ValueError(f"TransformConfig.{name}: expected 3 values, got {getattr(self, name)!r}")
            object.__setattr__(self, name, values)
        if min(self.std) <= 0:
            raise ValueError(f"TransformConfig.std: expected positive values, got {self.std!r}")
        if self.eval_resize is not None:
            size = self.eval_resize
            size = (size, size) if isinstance(size, int) else tuple(int(v) for v in size)
            if len(size) != 2 or min(size) < 1:
                raise ValueError(
                    f"TransformConfig.eval_resize: expected (height, width), got {self.eval_resize!r}"
                )
            object.__setattr__(self, "eval_resize", size)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TransformConfig:
        """Build from a mapping (e.g. an OmegaConf node); a ``preset`` key starts from that preset."""
        values = dict(values)
        base = PRESETS[_preset_name(values.pop("preset"))] if "preset" in values else cls()
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"TransformConfig: unknown keys {unknown} (expected some of {sorted(known)})")
        converted = {
            key: tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else value
            for key, value in values.items()
        }
        return replace(base, **converted)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _preset_name(name: str) -> str:
    if name not in PRESETS:
        raise ValueError(f"unknown transform preset {name!r} (expected one of {sorted(PRESETS)})")
    return name


PRESETS: dict[str, TransformConfig] = {
    # R1 GlaS: reflect-pad 50 %, crop 480, ColorJitter(0.5, 0.5, 0.5, 0.05), h+v flips, mean/std 0.5.
    "glas": TransformConfig(
        pad_fraction=0.5, crop_size=480, hflip=True, vflip=True, color_jitter=(0.5, 0.5, 0.5, 0.05)
    ),
    # R1 CUB / Oxford flowers: smaller side upscaled to 500 if below, crop 480, h flip, mean/std 0.5.
    "cub": TransformConfig(upscale_small_side=500, crop_size=480, hflip=True),
    "oxf": TransformConfig(upscale_small_side=500, crop_size=480, hflip=True),
    # TMI (R2) GlaS: smaller side resized to 432, crop 416, no padding (README commands).
    "glas-tmi": TransformConfig(
        image_size=432, crop_size=416, hflip=True, vflip=True, color_jitter=(0.5, 0.5, 0.5, 0.05)
    ),
    # wsolevaluation: evaluation on the whole image resized to 224 x 224, ImageNet statistics.
    "wsolevaluation": TransformConfig(
        image_size=256,
        crop_size=224,
        hflip=True,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        eval_resize=(224, 224),
    ),
    # The embedded synthetic benchmark: a small reflect padding + crop back to the native size (translation).
    # Glyphs are drawn in their canonical pose; flips/rot90 stay label-preserving (classes are D4 orbits) but
    # make the classifier learn 8 poses per class, so they are left to "synthetic-d4".
    "synthetic": TransformConfig(pad_fraction=0.125, crop_size=96),
    "synthetic-d4": TransformConfig(pad_fraction=0.125, crop_size=96, hflip=True, vflip=True, rot90=True),
}


def resize_sample(sample: Sample, size: tuple[int, int]) -> Sample:
    """Resize to ``(height, width)``: image bilinear (antialiased to shrink), masks nearest, boxes scaled."""
    image, mask, ignore, boxes = sample
    height, width = image.shape[-2:]
    if (height, width) == tuple(size):
        return sample
    shrink = size[0] < height or size[1] < width
    image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=shrink)[0]
    image = image.clamp_(0.0, 1.0)
    mask = F.interpolate(mask[None], size=size, mode="nearest-exact")[0]
    ignore = F.interpolate(ignore[None].float(), size=size, mode="nearest-exact")[0] > 0.5
    scale = boxes.new_tensor([size[1] / width, size[0] / height, size[1] / width, size[0] / height])
    return image, mask, ignore, boxes * scale


def aspect_size(height: int, width: int, smaller_side: int) -> tuple[int, int]:
    """``(height, width)`` whose smaller side is ``smaller_side``, keeping the aspect ratio."""
    scale = smaller_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def reflect_pad_sample(sample: Sample, pad_y: int, pad_x: int) -> Sample:
    """Reflect-pad every side (``torch`` ``reflect`` mode, as torchvision's ``Pad(padding_mode='reflect')``).

    Mirrored copies of the objects appear in the padding, so mirrored copies of their boxes are added: with
    ``reflect`` (edge pixel not repeated) the mirror axes are x = 0.5 and x = W − 0.5 in continuous
    coordinates.
    """
    image, mask, ignore, boxes = sample
    if pad_x == 0 and pad_y == 0:
        return sample
    height, width = image.shape[-2:]
    if pad_x >= width or pad_y >= height:
        raise ValueError(
            f"reflect padding ({pad_y}, {pad_x}) must be smaller than the image ({height}x{width})"
        )
    pad = (pad_x, pad_x, pad_y, pad_y)
    image = F.pad(image[None], pad, mode="reflect")[0]
    masks = F.pad(torch.cat([mask, ignore.float()])[None], pad, mode="reflect")[0]
    mirrored = []
    for sx, ox in ((1.0, 0.0), (-1.0, 1.0), (-1.0, 2.0 * width - 1.0)):
        for sy, oy in ((1.0, 0.0), (-1.0, 1.0), (-1.0, 2.0 * height - 1.0)):
            xs = boxes[:, [0, 2]] * sx + ox
            ys = boxes[:, [1, 3]] * sy + oy
            x0, x1 = xs.min(1).values + pad_x, xs.max(1).values + pad_x
            y0, y1 = ys.min(1).values + pad_y, ys.max(1).values + pad_y
            mirrored.append(torch.stack([x0, y0, x1, y1], dim=1))
    padded_boxes = clip_boxes(torch.cat(mirrored), height + 2 * pad_y, width + 2 * pad_x)
    return image, masks[:1], masks[1:] > 0.5, padded_boxes


def clip_boxes(boxes: Tensor, height: int, width: int) -> Tensor:
    """Clip boxes to the image and drop those left with no area."""
    limits = boxes.new_tensor([width, height, width, height])
    clipped = torch.minimum(boxes.clamp(min=0.0), limits)
    keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    return clipped[keep]


def normalize(image: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """``(image − mean) / std`` per channel for (3, H, W) or (B, 3, H, W)."""
    shape = (3, 1, 1)
    return (image - image.new_tensor(mean).view(shape)) / image.new_tensor(std).view(shape)


def denormalize(
    image: Tensor, mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.5, 0.5, 0.5)
) -> Tensor:
    """Inverse of :func:`normalize` (defaults: the R1 statistics 0.5 / 0.5), clamped to [0, 1]."""
    shape = (3, 1, 1)
    return (image * image.new_tensor(std).view(shape) + image.new_tensor(mean).view(shape)).clamp(0.0, 1.0)


def flip_boxes(boxes: Tensor, size: int, horizontal: bool) -> Tensor:
    """Boxes after a horizontal (x → W − x) or vertical (y → H − y) flip of an image of side ``size``."""
    x0, y0, x1, y1 = boxes.unbind(1)
    if horizontal:
        return torch.stack([size - x1, y0, size - x0, y1], dim=1)
    return torch.stack([x0, size - y1, x1, size - y0], dim=1)


def rot90_boxes(boxes: Tensor, height: int, width: int, k: int) -> Tensor:
    """Boxes after ``torch.rot90(image, k, dims=(-2, -1))`` (counter-clockwise quarter turns)."""
    for _ in range(k % 4):
        x0, y0, x1, y1 = boxes.unbind(1)
        boxes = torch.stack([y0, width - x1, y1, width - x0], dim=1)  # (x, y) -> (y, W - x)
        height, width = width, height
    return boxes


@dataclass
class JointTransform:
    """Callable ``(image, mask, ignore, boxes, seed) -> (image, mask, ignore, boxes)`` built from a config.

    Random crop, flips and quarter turns are exact index operations on image, masks and boxes (plain torch,
    drawn from a ``torch.Generator`` seeded with ``seed``); colour jitter is kornia's ``ColorJitter`` on the
    image only, under ``torch.random.fork_rng`` seeded from the same generator.
    """

    config: TransformConfig
    train: bool
    _jitter: K.ColorJitter | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        if self.train and self.config.color_jitter is not None:
            self._jitter = K.ColorJitter(*self.config.color_jitter, p=1.0)

    def resize_policy(self) -> dict[str, Any]:
        """Settings of the deterministic resize step (:meth:`resize`), what a decoded-image cache keys on."""
        cfg = self.config
        if not self.train and cfg.eval_resize is not None:
            return {"eval_resize": list(cfg.eval_resize)}
        return {"frame": cfg.frame, "image_size": cfg.image_size, "upscale": cfg.upscale_small_side}

    def resize(self, sample: Sample) -> Sample:
        """The deterministic resize step alone (a no-op on a sample it already resized)."""
        cfg = self.config
        height, width = sample[0].shape[-2:]
        if not self.train and cfg.eval_resize is not None:
            return resize_sample(sample, cfg.eval_resize)
        if cfg.frame is not None:
            return resize_sample(sample, (cfg.frame, cfg.frame))
        if cfg.image_size is not None:
            return resize_sample(sample, aspect_size(height, width, cfg.image_size))
        if cfg.upscale_small_side is not None and min(height, width) < cfg.upscale_small_side:
            return resize_sample(sample, aspect_size(height, width, cfg.upscale_small_side))
        return sample

    def __call__(self, image: Tensor, mask: Tensor, ignore: Tensor, boxes: Tensor, seed: int = 0) -> Sample:
        cfg = self.config
        sample = self.resize((image, mask, ignore, boxes.reshape(-1, 4).float()))
        if self.train:
            height, width = sample[0].shape[-2:]
            sample = reflect_pad_sample(
                sample, math.floor(cfg.pad_fraction * height), math.floor(cfg.pad_fraction * width)
            )
            sample = self._random(sample, seed)
        image, mask, ignore, boxes = sample
        return normalize(image, cfg.mean, cfg.std), mask, ignore, boxes

    def _random(self, sample: Sample, seed: int) -> Sample:
        cfg = self.config
        image, mask, ignore, boxes = sample
        masks = torch.cat([mask, ignore.float()])
        height, width = image.shape[-2:]
        generator = torch.Generator().manual_seed(seed)

        def draw(high: int) -> int:
            return int(torch.randint(0, high, (1,), generator=generator))

        if cfg.crop_size is not None:
            side = cfg.crop_size
            if min(height, width) < side:
                raise ValueError(
                    f"the image is {height}x{width} after resizing/padding, smaller than "
                    f"crop_size={side}; set image_size or upscale_small_side"
                )
            top, left = draw(height - side + 1), draw(width - side + 1)
            image = image[:, top : top + side, left : left + side]
            masks = masks[:, top : top + side, left : left + side]
            boxes = clip_boxes(boxes - boxes.new_tensor([left, top, left, top]), side, side)
            height = width = side
        if self._jitter is not None:
            jitter_seed = draw(2**62)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(jitter_seed)
                image = self._jitter(image[None])[0].clamp(0.0, 1.0)
        if cfg.hflip and draw(2):
            image, masks, boxes = image.flip(-1), masks.flip(-1), flip_boxes(boxes, width, horizontal=True)
        if cfg.vflip and draw(2):
            image, masks, boxes = image.flip(-2), masks.flip(-2), flip_boxes(boxes, height, horizontal=False)
        if cfg.rot90:
            if height != width:
                raise ValueError(f"rot90 needs square images (set crop_size); got {height}x{width}")
            k = draw(4)
            image, masks = torch.rot90(image, k, dims=(-2, -1)), torch.rot90(masks, k, dims=(-2, -1))
            boxes = rot90_boxes(boxes, height, width, k)
        return image.contiguous(), masks[:1].contiguous(), masks[1:] > 0.5, boxes


def build_transforms(config: TransformConfig | str | None = None, *, train: bool) -> JointTransform:
    """The train or eval :class:`JointTransform` for a config or a preset name (default: 0.5/0.5 only)."""
    if config is None:
        config = TransformConfig()
    elif isinstance(config, str):
        config = PRESETS[_preset_name(config)]
    return JointTransform(config, train)
