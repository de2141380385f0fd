"""Pixel pseudo-labels (seeds) sampled from a CAM at every training step.

F-CAM (Belharbi et al., WACV 2022, arXiv 2109.07069, §3.1 "pixel alignment", L_SR): foreground seeds are drawn
uniformly among the pixels above Otsu's threshold of the CAM (after an erosion of that region), background
seeds uniformly among the ``bg_fraction`` least activated pixels; each seed is dilated with a ``dilation``²
square. NEGEV (Belharbi et al., MIDL 2022, arXiv 2201.02445, §2) draws them with probabilities instead:
foreground ∝ the CAM, background ∝ 1 − the sum-normalised CAM (the authors' code; almost uniform). A pixel
drawn as both is dropped. Labels: 1 foreground, 0 background, :data:`IGNORE` elsewhere.

Constants default to the F-CAM CUB run: one pixel of each, 3×3 dilation, 10 % background pool, 11×11 erosion
applied once. Otsu's threshold is OpenCV's on the 8-bit CAM, clamped to [1, 254]; draws use the global torch
RNG (saved in the engine's checkpoints, so a resumed run draws the same seeds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import torch
import torch.nn.functional as F
from torch import Tensor

IGNORE = -255
"""Label of unseeded pixels (the ``ignore_index`` of the partial cross-entropy)."""

Rule = Literal["threshold", "probability"]


@dataclass(frozen=True)
class SeedConfig:
    """How many seeds, drawn how. ``rule``: ``threshold`` (F-CAM) or ``probability`` (NEGEV)."""

    rule: Rule = "threshold"
    fg_samples: int = 1
    bg_samples: int = 1
    dilation: int = 3
    bg_fraction: float = 0.1
    erode_kernel: int = 11
    erode_iterations: int = 1

    def __post_init__(self) -> None:
        if self.rule not in ("threshold", "probability"):
            raise ValueError(f"seeds.rule: expected 'threshold' or 'probability', got {self.rule!r}")
        if self.fg_samples < 0 or self.bg_samples < 0 or self.erode_iterations < 0:
            raise ValueError("seeds: fg_samples, bg_samples and erode_iterations must be >= 0")
        for name in ("dilation", "erode_kernel"):
            value = getattr(self, name)
            if value < 1 or value % 2 == 0:
                raise ValueError(f"seeds.{name}: expected an odd size >= 1, got {value}")
        if not 0.0 < self.bg_fraction <= 1.0:
            raise ValueError(f"seeds.bg_fraction: expected a fraction in (0, 1], got {self.bg_fraction}")


def otsu_region(cam: Tensor) -> Tensor:
    """Bool (H, W): pixels of ``uint8(255·cam)`` above Otsu's threshold clamped to [1, 254]."""
    u8 = (cam.detach().cpu().double().clamp(0, 1) * 255).to(torch.uint8).numpy()
    threshold, _ = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    threshold = min(max(threshold, 1.0), 254.0)
    return torch.from_numpy(u8 > threshold).to(cam.device)


def erode(region: Tensor, kernel: int, iterations: int) -> Tensor:
    """Binary erosion with a ``kernel``² square (outside pixels ignored); an erosion that empties stops it."""
    current = region
    for _ in range(iterations):
        eroded = -F.max_pool2d(-current[None, None].float(), kernel, stride=1, padding=kernel // 2)
        eroded = eroded[0, 0] > 0.5
        if not bool(eroded.any()):
            break
        current = eroded
    return current


def _pick(candidates: Tensor, count: int) -> Tensor:
    """``count`` distinct entries of the 1-D ``candidates``, uniformly (all of them if fewer)."""
    order = torch.randperm(candidates.numel(), device=candidates.device)
    return candidates[order[:count]]


def _draw(weights: Tensor, count: int) -> Tensor:
    """``count`` distinct flat indices drawn ∝ ``weights`` without replacement."""
    count = min(count, int((weights > 0).sum()))
    if count == 0:
        return weights.new_zeros(0, dtype=torch.long)
    return torch.multinomial(weights, count, replacement=False)


def _indices(cam: Tensor, config: SeedConfig) -> tuple[Tensor, Tensor]:
    """Flat indices of the foreground and background draws for one CAM (H, W)."""
    flat = cam.flatten()
    if config.rule == "probability":
        p = (flat + 1e-6) / (flat + 1e-6).sum()
        return _draw(p, config.fg_samples), _draw(1.0 - p, config.bg_samples)
    region = erode(otsu_region(cam), config.erode_kernel, config.erode_iterations)
    fg = _pick(region.flatten().nonzero()[:, 0], config.fg_samples)
    pool = torch.argsort(flat, stable=True)[: int(config.bg_fraction * flat.numel())]
    return fg, _pick(pool, config.bg_samples)


def _dilate(indices: Tensor, shape: tuple[int, int], size: int) -> Tensor:
    marks = torch.zeros(shape[0] * shape[1], dtype=torch.float32, device=indices.device)
    marks[indices] = 1.0
    marks = marks.view(1, 1, *shape)
    if size > 1:
        marks = F.max_pool2d(marks, size, stride=1, padding=size // 2)
    return marks[0, 0] > 0.5


def sample_seeds(cams: Tensor, config: SeedConfig) -> Tensor:
    """Seeds (B, H, W) int64 in {1, 0, IGNORE} for CAMs (B, H, W) in [0, 1]; a constant CAM gets none."""
    if cams.ndim != 3:
        raise ValueError(f"cams: expected (B, H, W), got {tuple(cams.shape)}")
    seeds = torch.full(cams.shape, IGNORE, dtype=torch.long, device=cams.device)
    shape = (int(cams.shape[1]), int(cams.shape[2]))
    for b, cam in enumerate(cams):
        if not bool(torch.isfinite(cam).all()) or float(cam.max() - cam.min()) <= 0:
            continue
        fg_index, bg_index = _indices(cam, config)
        fg = _dilate(fg_index, shape, config.dilation)
        bg = _dilate(bg_index, shape, config.dilation)
        seeds[b][fg & ~bg] = 1
        seeds[b][bg & ~fg] = 0
    return seeds


def seed_counts(seeds: Tensor) -> tuple[int, int]:
    """(foreground, background) seeded pixels: a logging helper."""
    return int((seeds == 1).sum()), int((seeds == 0).sum())


__all__ = ["IGNORE", "SeedConfig", "otsu_region", "sample_seeds", "seed_counts"]
