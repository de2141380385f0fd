"""Overlay pictures: a localization map in a colour map over the image, the mask contour and the boxes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from wsol.io import atomic_write_bytes

COLORMAPS = {"jet": cv2.COLORMAP_JET, "turbo": cv2.COLORMAP_TURBO, "inferno": cv2.COLORMAP_INFERNO}


@dataclass(frozen=True)
class OverlayStyle:
    """How :func:`draw_overlay` draws: map opacity ``alpha``, colour map, RGB colours, line thickness."""

    alpha: float = 0.5
    colormap: str = "jet"
    contour_color: tuple[int, int, int] = (255, 255, 255)
    box_color: tuple[int, int, int] = (0, 255, 0)
    thickness: int = 1

    def __post_init__(self) -> None:
        if self.colormap not in COLORMAPS:
            raise ValueError(f"colormap: expected one of {sorted(COLORMAPS)}, got {self.colormap!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha: expected a value in [0, 1], got {self.alpha}")


def draw_overlay(
    image: np.ndarray,
    heatmap: np.ndarray,
    mask: np.ndarray | None = None,
    boxes: Sequence[Sequence[float]] = (),
    style: OverlayStyle = OverlayStyle(),
) -> np.ndarray:
    """RGB uint8 (H, W, 3): ``(1 - alpha) * image + alpha * colormap(heatmap)``, mask contour, boxes.

    ``image`` is RGB uint8 (H, W, 3); ``heatmap`` (H, W) in [0, 1]; ``mask`` (H, W) bool; ``boxes`` are
    ``x0, y0, x1, y1`` in continuous pixel coordinates (``x1`` = last column + 1).
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image: expected an RGB uint8 array (H, W, 3), got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    if heatmap.shape != (height, width):
        raise ValueError(f"heatmap: expected shape {(height, width)} (the image's), got {heatmap.shape}")
    if mask is not None and mask.shape != (height, width):
        raise ValueError(f"mask: expected shape {(height, width)} (the image's), got {mask.shape}")
    levels = np.round(np.clip(np.nan_to_num(heatmap.astype(np.float64)), 0.0, 1.0) * 255).astype(np.uint8)
    colored = cv2.cvtColor(cv2.applyColorMap(levels, COLORMAPS[style.colormap]), cv2.COLOR_BGR2RGB)
    out = cv2.addWeighted(image, 1.0 - style.alpha, colored, style.alpha, 0.0)
    if mask is not None and mask.any():
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, style.contour_color, style.thickness)
    for box in boxes:
        x0, y0, x1, y1 = (float(v) for v in box)
        top_left = (int(round(x0)), int(round(y0)))
        bottom_right = (max(int(round(x1)) - 1, top_left[0]), max(int(round(y1)) - 1, top_left[1]))
        cv2.rectangle(out, top_left, bottom_right, style.box_color, style.thickness)
    return out


def save_png(path: Path, rgb_or_gray: np.ndarray) -> None:
    """Encode a uint8 RGB (H, W, 3) or greyscale (H, W) array as PNG and write it atomically."""
    if rgb_or_gray.dtype != np.uint8:
        raise ValueError(f"{path}: expected a uint8 array, got {rgb_or_gray.dtype}")
    array = cv2.cvtColor(rgb_or_gray, cv2.COLOR_RGB2BGR) if rgb_or_gray.ndim == 3 else rgb_or_gray
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode a {rgb_or_gray.shape} array as PNG")
    atomic_write_bytes(Path(path), encoded.tobytes())
