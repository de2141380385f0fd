"""The embedded synthetic WSOL benchmark: a deterministic generator of datasets with masks and boxes.

What every image contains and why (details in ``docs/data.md``):

* **Class evidence is a small local part.** Each object carries one *glyph*, a 4 × 4 binary pattern whose D4
  orbit (rotations/flips) encodes the class. It covers 2–3.5 % of the image (~5 % of a large object to ~40 %
  of the smallest), so a classifier only needs the glyph and plain CAM lights up the glyph, not the object's
  extent (what the mask covers).
* **Weak evidence spread over the body.** The object's stripe period is drawn from a class-specific band with
  probability ``body_evidence`` (else from the whole range): erasing-style methods can find more of the object
  once the glyph is hidden, as on real data where the rest of a bird is weakly informative.
* **Objects are not salient.** Background and object are painted with the *same two colours* in about equal
  proportions; they differ only in texture (blotches vs straight stripes), so colour saliency finds nothing.
* **Distractors** in the background: glyphs of patterns that belong to no class (look like parts, carry no
  class signal) and fragments of stripe texture with a class-independent period (look like object pieces).
* **Variable size, position and count**: total object area 5–60 % of the image (log-uniform), random position
  and star-convex shape; ``natural-multi`` and ``histology`` draw several instances (like glands in GlaS).
* ``histology`` paints H&E-like colours: pink fibrous stroma with scattered nuclei, glands with a pale lumen
  and a rim of nuclei; glyphs and distractors are clusters of nuclei.

Every image is drawn from its own generator ``default_rng([seed, split, index])`` (order-independent), the
codebook from a fixed seed; PNGs are encoded with fixed settings, so the same parameters give identical bytes.
"""

from __future__ import annotations

import colorsys
import fcntl
import hashlib
import json
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from wsol.data.format import METADATA_DIR, DatasetFormatError, DatasetInfo, ImageRecord, write_dataset
from wsol.data.images import write_png
from wsol.data.output import check_output_folder
from wsol.io import atomic_directory

GENERATOR_VERSION = 1
"""Bump when the drawing changes: it is part of the cache key of :func:`ensure_synthetic`."""

SPLITS = ("train", "val", "test")
PRESETS = ("natural", "natural-multi", "histology")
PARTS_FILE = "parts.txt"
_CODEBOOK_SEED = 20200620
_DISTRACTOR_PATTERNS = 4
_GRID = 4
_MIN_DISTANCE = 4
_MAX_CLASSES = 16


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of a synthetic dataset (``None`` fields take the preset's default, see :data:`PRESETS`).

    ``instances``: (min, max) objects per image. ``object_area``: (min, max) fraction of the image covered by
    all objects together. ``distractors``: (min, max) distractor glyphs (plus 1–2 texture fragments in natural
    presets). ``body_evidence``: probability that the body texture follows the class band. ``random_pose``:
    draw each glyph in a random rotation/flip (harder: a classifier must learn 8 poses per class).
    """

    preset: str = "natural"
    num_classes: int | None = None
    image_size: int = 96
    train: int = 600
    val: int = 100
    test: int = 300
    seed: int = 0
    instances: tuple[int, int] | None = None
    object_area: tuple[float, float] = (0.05, 0.60)
    distractors: tuple[int, int] | None = None
    body_evidence: float = 0.5
    random_pose: bool = False

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"synthetic preset {self.preset!r} is unknown (expected one of {list(PRESETS)})")
        multi = self.preset != "natural"
        defaults = {
            "num_classes": 2 if self.preset == "histology" else 4,
            "instances": (2, 5) if self.preset == "histology" else ((2, 4) if multi else (1, 1)),
            "distractors": (2, 4),
        }
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        for name in ("instances", "distractors", "object_area"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        self._check_sizes()
        self._check_ranges()

    def _check_sizes(self) -> None:
        """Number of classes, image size and split sizes within their ranges."""
        available = len(codebook()[0])
        if not 2 <= self.num_classes <= available:
            raise ValueError(f"num_classes: expected 2..{available}, got {self.num_classes}")
        if not 32 <= self.image_size <= 1024:
            raise ValueError(f"image_size: expected 32..1024 pixels, got {self.image_size}")
        for name in SPLITS:
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: every split needs at least one image, got {getattr(self, name)}")

    def _check_ranges(self) -> None:
        """The (min, max) ranges ordered and within bounds; ``body_evidence`` a probability."""
        low, high = self.instances
        most = min(8, int(0.35 * self.image_size**2 / _min_object_area(self.image_size)))
        if not 1 <= low <= high <= most:
            raise ValueError(
                f"instances: expected 1 <= min <= max <= {most} at {self.image_size} px, got {self.instances}"
            )
        low_d, high_d = self.distractors
        if not 0 <= low_d <= high_d <= 16:
            raise ValueError(f"distractors: expected 0 <= min <= max <= 16, got {self.distractors}")
        area_low, area_high = self.object_area
        if not 0.01 <= area_low <= area_high <= 0.7:
            raise ValueError(f"object_area: expected 0.01 <= min <= max <= 0.7, got {self.object_area}")
        if not 0.0 <= self.body_evidence <= 1.0:
            raise ValueError(f"body_evidence: expected a probability in [0, 1], got {self.body_evidence}")

    def cache_key(self) -> str:
        payload = json.dumps({"version": GENERATOR_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _cell_range(size: int) -> tuple[int, int]:
    """Glyph cell sizes in pixels (3–4 at 96 px, scaling with the image, at least 2)."""
    return max(2, round(3 * size / 96)), max(2, round(4 * size / 96))


def _min_object_area(size: int) -> float:
    """The smallest object area (pixels) that still holds the smallest glyph with a margin."""
    return 1.3 * (_GRID * _cell_range(size)[0] + 6) ** 2


# --------------------------------------------------------------------------------------------------- codebook
def _orbit(pattern: np.ndarray) -> list[np.ndarray]:
    """The images of a square pattern under the dihedral group D4 (8, fewer for symmetric patterns)."""
    return _orbit_of_bytes(np.ascontiguousarray(pattern, np.uint8).tobytes())


@lru_cache(maxsize=1024)
def _orbit_of_bytes(data: bytes) -> list[np.ndarray]:
    pattern = np.frombuffer(data, np.uint8).reshape(_GRID, _GRID)
    seen: dict[bytes, np.ndarray] = {}
    for k in range(4):
        for flip in (False, True):
            image = np.rot90(pattern, k)
            image = np.fliplr(image) if flip else image
            seen.setdefault(image.tobytes(), np.ascontiguousarray(image))
    return list(seen.values())


def _d4_codes(patterns: np.ndarray) -> np.ndarray:
    """(N, 8) integer codes of the 8 D4 images of (N, G, G) binary patterns (bit ``i`` = flat cell ``i``)."""
    weights = (1 << np.arange(_GRID * _GRID, dtype=np.int64)).reshape(_GRID, _GRID)
    images = []
    for k in range(4):
        rotated = np.rot90(patterns, k, axes=(1, 2))
        images += [rotated, rotated[:, :, ::-1]]
    return np.stack([(image * weights).sum((1, 2)) for image in images], axis=1)


@lru_cache(maxsize=1)
def codebook() -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """(class patterns, distractor patterns): 4 × 4 binary patterns with 6–8 cells on, from D4 orbits.

    Greedy choice over a fixed shuffle: every pose of a chosen pattern differs in at least
    :data:`_MIN_DISTANCE` cells from every pose of any other chosen pattern, so no flip or rotation turns one
    class into another or a distractor into a class. Ink density is alike (6–8 of 16 cells) for classes and
    distractors, so it carries no class signal. Class ``k`` is the ``k``-th pattern whatever the number of
    classes; the last :data:`_DISTRACTOR_PATTERNS` chosen patterns are the distractors.
    """
    cells = _GRID * _GRID
    every = np.arange(1 << cells, dtype=np.int64)
    bits = (every[:, None] >> np.arange(cells)) & 1
    candidates = every[np.isin(bits.sum(1), (6, 7, 8))]
    patterns = ((candidates[:, None] >> np.arange(cells)) & 1).reshape(-1, _GRID, _GRID).astype(np.uint8)
    codes = _d4_codes(patterns)
    _, first = np.unique(codes.min(1), return_index=True)  # one representative per orbit
    order = np.random.default_rng(_CODEBOOK_SEED).permutation(first)
    chosen: list[int] = []
    chosen_codes = np.zeros(0, np.int64)
    for index in order:
        if chosen_codes.size:
            xor = codes[index][:, None] ^ chosen_codes[None, :]
            distance = ((xor[..., None] >> np.arange(cells)) & 1).sum(-1)
            if distance.min() < _MIN_DISTANCE:
                continue
        chosen.append(int(index))
        chosen_codes = np.concatenate([chosen_codes, codes[index]])
        if len(chosen) == _MAX_CLASSES + _DISTRACTOR_PATTERNS:
            break
    classes = tuple(patterns[i] for i in chosen[:-_DISTRACTOR_PATTERNS])
    distractors = tuple(patterns[i] for i in chosen[-_DISTRACTOR_PATTERNS:])
    return classes, distractors


# ---------------------------------------------------------------------------------------------------- drawing
@dataclass
class SyntheticSample:
    """One generated image with its ground truth and the positions of its evidence and distractors."""

    image: np.ndarray  # (S, S, 3) uint8 RGB
    instances: np.ndarray  # (S, S) uint8, 0 = background, i = instance i
    label: int
    boxes: list[tuple[float, float, float, float]]
    parts: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)
    body_periods: list[float] = field(default_factory=list)


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return yy, xx


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), np.float32)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Band-limited noise in [0, 1]: a random ``cells × cells`` grid upsampled bicubically."""
    coarse = rng.random((cells, cells), dtype=np.float32)
    field_ = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    low, high = float(field_.min()), float(field_.max())
    return (field_ - low) / max(high - low, 1e-6)


def _soft_binary(values: np.ndarray, sharpness: float = 6.0) -> np.ndarray:
    """Map values centred on 0 to an almost two-level mix weight in [0, 1]."""
    return 0.5 + 0.5 * np.tanh(sharpness * values)


def _stripes(size: int, where: np.ndarray, period: float, angle: float, phase: float) -> np.ndarray:
    """Soft two-level stripes at the pixels ``where`` (a boolean mask), as a flat array."""
    yy, xx = _grid(size)
    wave = np.sin(
        2.0 * math.pi * (xx[where] * math.cos(angle) + yy[where] * math.sin(angle)) / period + phase
    )
    return _soft_binary(wave, 2.5)


def _star_polygon(rng: np.random.Generator, radius: float, points: int = 48) -> np.ndarray:
    """A smooth star-convex shape (random harmonics + elongation) of mean radius ``radius``, centred at 0."""
    theta = np.linspace(0.0, 2.0 * math.pi, points, endpoint=False)
    r = np.ones_like(theta)
    for k in (2, 3, 4):
        r += rng.uniform(0.0, 0.12) * np.cos(k * theta + rng.uniform(0.0, 2.0 * math.pi))
    xs, ys = r * np.cos(theta), r * np.sin(theta) * rng.uniform(0.6, 1.0)
    rot = rng.uniform(0.0, math.pi)
    c, s = math.cos(rot), math.sin(rot)
    return np.stack([c * xs - s * ys, s * xs + c * ys], axis=1) * radius


def _fill(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def _free_distance(occupied: np.ndarray) -> np.ndarray:
    """Chessboard distance of each pixel to ``occupied`` or to the image border."""
    free = (~occupied).astype(np.uint8)
    free[0, :] = free[-1, :] = free[:, 0] = free[:, -1] = 0
    return cv2.distanceTransform(free, cv2.DIST_C, 3)


def _free_centres(occupied: np.ndarray, half: int, margin: int) -> np.ndarray:
    """Pixels where a square of half-side ``half`` fits in the image, ``margin`` px away from ``occupied``."""
    return np.argwhere(_free_distance(occupied) > half + margin)


def _inside_depth(mask: np.ndarray) -> np.ndarray:
    """Chessboard distance of each mask pixel to the outside: a square of half-side ``h`` centred at a
    pixel of depth ``> h`` lies inside the mask."""
    padded = np.pad(mask.astype(np.uint8), 1)
    return cv2.distanceTransform(padded, cv2.DIST_C, 3)[1:-1, 1:-1]


class _Painter:
    """Draws one image; the preset decides the palette and how glyphs/objects/distractors look."""

    def __init__(self, config: SynthConfig, rng: np.random.Generator, label: int) -> None:
        self.cfg = config
        self.rng = rng
        self.label = label
        self.size = config.image_size
        self.histology = config.preset == "histology"
        self.class_patterns, self.distractor_patterns = codebook()
        unit = self.size / 96.0
        self.period_range = (4.0 * unit, 10.0 * unit)
        self.cell_range = _cell_range(self.size)
        if self.histology:
            jitter = rng.uniform(-0.04, 0.04, 3).astype(np.float32)
            self.light = np.clip(np.array([0.93, 0.74, 0.84], np.float32) + jitter, 0, 1)
            self.dark = np.clip(np.array([0.78, 0.46, 0.66], np.float32) + jitter, 0, 1)
            self.ink = np.clip(np.array([0.33, 0.20, 0.52], np.float32) + rng.uniform(-0.05, 0.05, 3), 0, 1)
            self.paper = np.clip(np.array([0.97, 0.93, 0.96], np.float32) + jitter / 2, 0, 1)
        else:
            hue = rng.random()
            self.dark = _hsv(hue, rng.uniform(0.3, 0.7), rng.uniform(0.30, 0.45))
            self.light = _hsv(hue + rng.uniform(0.05, 0.3), rng.uniform(0.2, 0.6), rng.uniform(0.65, 0.85))
            self.ink = self.dark * 0.45
            self.paper = np.minimum(self.light * 1.15, 1.0)

    # -- textures -------------------------------------------------------------------------------------------
    def _mix(self, weight: np.ndarray) -> np.ndarray:
        return self.dark + (self.light - self.dark) * weight[..., None]

    def background(self) -> np.ndarray:
        size = self.size
        if self.histology:  # fibrous stroma: warped high-frequency waves
            warp = _smooth_noise(self.rng, size, 4) * self.rng.uniform(2.0, 4.0)
            yy, xx = _grid(size)
            angle = self.rng.uniform(0.0, math.pi)
            wave = np.sin(
                2 * math.pi * ((xx * math.cos(angle) + yy * math.sin(angle)) / (5.0 * size / 96) + warp)
            )
            return self._mix(_soft_binary(wave, 1.5))
        cells = int(self.rng.integers(5, 9))
        noise = _smooth_noise(self.rng, size, cells)
        return self._mix(_soft_binary(noise - float(np.median(noise))))

    def body_period(self) -> float:
        low, high = self.period_range
        if self.rng.random() < self.cfg.body_evidence:
            width = (high - low) / self.cfg.num_classes
            return float(low + width * (self.label + self.rng.random()))
        return float(self.rng.uniform(low, high))

    def paint_body(self, canvas: np.ndarray, where: np.ndarray, period: float) -> None:
        """Paint straight stripes of ``period`` px (random orientation and phase) at the ``where`` pixels."""
        angle, phase = self.rng.uniform(0, math.pi), self.rng.uniform(0, 2 * math.pi)
        canvas[where] = self._mix(_stripes(self.size, where, period, angle, phase))

    # -- glyphs ---------------------------------------------------------------------------------------------
    def glyph(self, canvas: np.ndarray, pattern: np.ndarray, cy: int, cx: int, cell: int) -> tuple[int, ...]:
        """Draw ``pattern``, randomly rotated/flipped, centred at (cy, cx); return its box x0, y0, x1, y1."""
        if self.cfg.random_pose:
            members = _orbit(pattern)
            pattern = members[int(self.rng.integers(0, len(members)))]
        side = _GRID * cell
        y0, x0 = cy - side // 2, cx - side // 2
        if self.histology:  # a cluster of nuclei, one per ink cell
            for gy, gx in np.argwhere(pattern):
                centre = (int(x0 + gx * cell + cell // 2), int(y0 + gy * cell + cell // 2))
                cv2.circle(canvas, centre, max(1, cell // 2), self.ink.tolist(), -1, lineType=cv2.LINE_8)
            return (x0, y0, x0 + side, y0 + side)
        canvas[y0 - 1 : y0 + side + 1, x0 - 1 : x0 + side + 1] = self.paper
        cells = np.kron(pattern, np.ones((cell, cell), np.uint8)).astype(bool)
        canvas[y0 : y0 + side, x0 : x0 + side][cells] = self.ink
        return (x0 - 1, y0 - 1, x0 + side + 1, y0 + side + 1)

    def cell_for(self, area: float) -> int:
        low, high = self.cell_range
        return int(np.clip(round(0.11 * math.sqrt(area)), low, high))


_Placement = tuple[np.ndarray, np.ndarray, int, np.ndarray]
"""(mask, mask grown by 2 px, glyph cell size, pixels where the glyph can be centred)."""


def _place_one(
    paint: _Painter, rng: np.random.Generator, occupied: np.ndarray, area: float
) -> _Placement | None:
    """A star-convex object of about ``area`` pixels at a free position, with room for a glyph inside."""
    size = paint.size
    min_cell = paint.cell_range[0]
    free_distance = _free_distance(occupied)
    for _attempt in range(12):
        polygon = _star_polygon(rng, 1.0)
        polygon *= math.sqrt(area / abs(cv2.contourArea(polygon.astype(np.float32))))
        radius = float(np.hypot(polygon[:, 0], polygon[:, 1]).min())  # inscribed: a necessary condition
        centres = np.argwhere(free_distance > radius + 1.0)
        if len(centres) == 0:  # no room left at this size
            return None
        cy, cx = centres[int(rng.integers(0, len(centres)))]
        shifted = polygon + np.array([cx + 0.5, cy + 0.5], np.float32)
        if shifted.min() < 1.0 or shifted.max() > size - 2.0:
            continue
        mask = _fill((size, size), shifted)
        if (mask & occupied).any():
            continue
        depth = _inside_depth(mask)
        cell = paint.cell_for(float(mask.sum()))
        while cell > min_cell and not (depth > (_GRID * cell) // 2 + 2).any():
            cell -= 1
        spots = np.argwhere(depth > (_GRID * cell) // 2 + 2)
        if len(spots) > 0:
            grown = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
            return mask, grown, cell, spots
        area *= 1.15  # too thin for the smallest glyph
    return None


def _layout(paint: _Painter, rng: np.random.Generator) -> list[_Placement]:
    """All objects of an image: ``count`` shares of a log-uniform total area; if they do not fit, the whole
    layout is redrawn with 15 % less area (so the drawn count is always honoured)."""
    cfg, size = paint.cfg, paint.size
    count = int(rng.integers(cfg.instances[0], cfg.instances[1] + 1))
    low, high = cfg.object_area
    total = math.exp(rng.uniform(math.log(low), math.log(high))) * size * size
    floor = _min_object_area(size)
    for _restart in range(40):
        shares = np.sort(rng.dirichlet(np.full(count, 4.0)))[::-1] if count > 1 else np.ones(1)
        occupied = np.zeros((size, size), bool)
        placements: list[_Placement] = []
        for share in shares:
            placed = _place_one(paint, rng, occupied, max(float(share * total), floor))
            if placed is None:
                break
            placements.append(placed)
            occupied |= placed[1]
        if len(placements) == count:
            return placements
        total *= 0.85
    raise RuntimeError(
        f"cannot fit {count} objects in a {size} px image; lower --instances or raise --image-size"
    )


def _draw(config: SynthConfig, rng: np.random.Generator, label: int) -> SyntheticSample:
    paint = _Painter(config, rng, label)
    size = config.image_size
    canvas = paint.background()
    if paint.histology:  # scattered stromal nuclei: fine clutter everywhere
        for _ in range(int(rng.integers(8, 20))):
            centre = (int(rng.integers(0, size)), int(rng.integers(0, size)))
            cv2.circle(canvas, centre, 1, paint.ink.tolist(), -1, lineType=cv2.LINE_8)
    instances = np.zeros((size, size), np.uint8)
    occupied = np.zeros((size, size), bool)
    boxes: list[tuple[float, float, float, float]] = []
    parts: list[tuple[str, tuple[int, int, int, int]]] = []
    periods: list[float] = []
    for index, (mask, grown, cell, spots) in enumerate(_layout(paint, rng), start=1):
        period = paint.body_period()
        paint.paint_body(canvas, mask, period)
        if paint.histology:  # pale lumen and a rim of nuclei
            ys, xs = np.nonzero(mask)
            cy, cx = float(ys.mean()), float(xs.mean())
            lumen = cv2.erode(mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
            lumen[ys, xs] &= (ys - cy) ** 2 + (xs - cx) ** 2 < 0.12 * len(ys)
            canvas[lumen] = paint.paper
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            for x, y in contours[0][::4, 0, :]:
                inward = (int(round(x + 0.15 * (cx - x))), int(round(y + 0.15 * (cy - y))))
                cv2.circle(canvas, inward, 1, paint.ink.tolist(), -1, lineType=cv2.LINE_8)
        gy, gx = spots[int(rng.integers(0, len(spots)))]
        parts.append(("part", paint.glyph(canvas, paint.class_patterns[label], int(gy), int(gx), cell)))
        instances[mask] = index
        occupied |= grown
        ys, xs = np.nonzero(mask)
        boxes.append((float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)))
        periods.append(period)
    _draw_distractors(paint, canvas, occupied, parts)
    noise = rng.normal(0.0, 0.025, canvas.shape).astype(np.float32)
    image = np.clip((canvas + noise) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return SyntheticSample(image, instances, label, boxes, parts, periods)


def _draw_distractors(
    paint: _Painter,
    canvas: np.ndarray,
    occupied: np.ndarray,
    parts: list[tuple[str, tuple[int, int, int, int]]],
) -> None:
    """Glyphs of no class and (natural) stripe fragments or (histology) pale holes, away from the objects."""
    rng, cfg, size = paint.rng, paint.cfg, paint.size
    taken = occupied.copy()
    glyphs = int(rng.integers(cfg.distractors[0], cfg.distractors[1] + 1))
    fragments = int(rng.integers(1, 3))
    for kind in ["distractor"] * glyphs + ["fragment"] * fragments:
        cell = int(rng.integers(paint.cell_range[0], paint.cell_range[1] + 1))
        half = (_GRID * cell) // 2 + 1 if kind == "distractor" else int(rng.integers(4, 8) * size / 96)
        spots = _free_centres(taken, half, 1)
        if len(spots) == 0:
            continue
        cy, cx = (int(v) for v in spots[int(rng.integers(0, len(spots)))])
        if kind == "distractor":
            pattern = paint.distractor_patterns[int(rng.integers(0, len(paint.distractor_patterns)))]
            box = paint.glyph(canvas, pattern, cy, cx, cell)
        else:
            polygon = _star_polygon(rng, float(half)) + np.array([cx, cy], np.float32)
            polygon[:, 0] = np.clip(polygon[:, 0], cx - half, cx + half)
            polygon[:, 1] = np.clip(polygon[:, 1], cy - half, cy + half)
            blob = _fill(occupied.shape, polygon)
            if paint.histology:
                canvas[blob] = paint.paper
            else:
                paint.paint_body(canvas, blob, float(rng.uniform(*paint.period_range)))
            ys, xs = np.nonzero(blob)
            box = (int(xs.min()), int(ys.min()), int(xs.max() + 1), int(ys.max() + 1))
        parts.append((kind, box))
        y0, y1 = max(0, box[1] - 1), min(size, box[3] + 1)
        x0, x1 = max(0, box[0] - 1), min(size, box[2] + 1)
        taken[y0:y1, x0:x1] = True


def split_labels(config: SynthConfig, split: str) -> np.ndarray:
    """Balanced labels of a split (``i % K``), shuffled by ``default_rng([seed, split, 0])``."""
    count = getattr(config, split)
    labels = np.arange(count) % config.num_classes
    return np.random.default_rng([config.seed, SPLITS.index(split), 0]).permutation(labels)


def generate_sample(config: SynthConfig, split: str, index: int, label: int | None = None) -> SyntheticSample:
    """Image ``index`` of ``split`` (drawn from its own generator; independent of the other images)."""
    if label is None:
        label = int(split_labels(config, split)[index])
    rng = np.random.default_rng([config.seed, SPLITS.index(split), 1, index])
    return _draw(config, rng, label)


def iter_split(config: SynthConfig, split: str) -> Iterator[SyntheticSample]:
    """Every sample of ``split`` in order."""
    for index, label in enumerate(split_labels(config, split)):
        yield generate_sample(config, split, index, int(label))


# ------------------------------------------------------------------------------------------------ dataset I/O
def class_names(config: SynthConfig) -> list[str]:
    """``benign``/``malignant`` for the two-class histology preset, ``glyph-k`` otherwise."""
    if config.preset == "histology" and config.num_classes == 2:
        return ["benign", "malignant"]
    return [f"glyph-{k}" for k in range(config.num_classes)]


def generate_synthetic(
    out: Path | str, config: SynthConfig | None = None, *, overwrite: bool = False, **options: object
) -> Path:
    """Write a complete dataset for ``config`` (or ``SynthConfig(**options)``) at ``out``, atomically.

    Layout: ``images/<split>/<split>_NNNNN.png``, ``masks/<split>/<split>_NNNNN.png`` (instance ids),
    wsolevaluation metadata with boxes in ``localization.txt`` and masks in ``masks.txt``, and
    ``metadata/<split>/parts.txt`` (``image_id,kind,x0,y0,x1,y1``; kind = part | distractor | fragment).
    """
    if config is not None and options:
        raise TypeError("generate_synthetic: pass a SynthConfig or keyword options, not both")
    config = config if config is not None else SynthConfig(**options)  # type: ignore[arg-type]
    out = Path(out)
    check_output_folder(out, force=overwrite)
    with atomic_directory(out, check=lambda: check_output_folder(out, force=overwrite)) as tmp:
        splits: dict[str, list[ImageRecord]] = {}
        for split in SPLITS:
            records = []
            part_lines = []
            for index, sample in enumerate(iter_split(config, split)):
                name = f"{split}/{split}_{index:05d}.png"
                write_png(tmp / "images" / name, sample.image)
                write_png(tmp / "masks" / name, sample.instances)
                records.append(
                    ImageRecord(
                        image_id=name,
                        label=sample.label,
                        width=config.image_size,
                        height=config.image_size,
                        boxes=tuple(sample.boxes),
                        mask_paths=(name,),
                    )
                )
                part_lines.extend(f"{name},{kind},{','.join(map(str, box))}\n" for kind, box in sample.parts)
            splits[split] = records
            (tmp / METADATA_DIR / split).mkdir(parents=True, exist_ok=True)
            (tmp / METADATA_DIR / split / PARTS_FILE).write_text("".join(part_lines), encoding="utf-8")
        info = DatasetInfo(
            name=f"synthetic-{config.preset}",
            num_classes=config.num_classes,
            splits=list(SPLITS),
            class_names=class_names(config),
            extra={
                "generator": "wsol.data.synth",
                "generator_version": GENERATOR_VERSION,
                "config": asdict(config),
                "transform": {"preset": "synthetic", "crop_size": config.image_size},
            },
        )
        write_dataset(tmp, info, splits)
    return out


def read_parts(root: Path | str, split: str) -> dict[str, list[tuple[str, tuple[int, int, int, int]]]]:
    """``image_id -> [(kind, box)]`` from ``metadata/<split>/parts.txt`` of a synthetic dataset."""
    path = Path(root) / METADATA_DIR / split / PARTS_FILE
    if not path.is_file():
        raise DatasetFormatError(f"{path}: file not found; is {root} a synthetic dataset?")
    parts: dict[str, list[tuple[str, tuple[int, int, int, int]]]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split(",")
        if len(fields) != 6:
            raise DatasetFormatError(f"{path}:{lineno}: expected image_id,kind,x0,y0,x1,y1, got {line!r}")
        try:
            box = tuple(int(v) for v in fields[2:])
        except ValueError as err:
            raise DatasetFormatError(f"{path}:{lineno}: non-integer box in {line!r}") from err
        parts.setdefault(fields[0], []).append((fields[1], box))  # type: ignore[arg-type]
    return parts


def default_cache_dir() -> Path:
    """``$WSOL_CACHE_DIR`` or ``~/.cache/wsol``."""
    return Path(os.environ.get("WSOL_CACHE_DIR") or Path.home() / ".cache" / "wsol")


def ensure_synthetic(
    cache_dir: Path | str | None = None,
    *,
    preset: str = "natural",
    num_classes: int | None = None,
    image_size: int = 96,
    seed: int = 0,
    train: int = 600,
    val: int = 100,
    test: int = 300,
    **options: object,
) -> Path:
    """Root of the synthetic dataset for these parameters, generated once under ``cache_dir``.

    The folder name carries a hash of every parameter and of :data:`GENERATOR_VERSION`; generation is atomic
    and serialised by a lock file, so concurrent callers (DDP ranks, test workers) share one copy.
    Extra ``options`` are :class:`SynthConfig` fields (``instances``, ``object_area``, ``distractors``,
    ``body_evidence``).
    """
    config = SynthConfig(
        preset=preset,
        num_classes=num_classes,
        image_size=image_size,
        seed=seed,
        train=train,
        val=val,
        test=test,
    )
    unknown = sorted(set(options) - set(SynthConfig.__dataclass_fields__))
    if unknown:
        raise TypeError(f"ensure_synthetic: unknown options {unknown}")
    config = replace(config, **options)  # type: ignore[arg-type]
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    root = cache / f"synth-{config.preset}-{config.cache_key()}"
    with open(cache / f".{root.name}.lock", "w") as lock:  # closing the file releases the lock
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "dataset.json").is_file():
            generate_synthetic(root, config, overwrite=True)
    return root
