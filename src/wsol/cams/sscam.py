"""SS-CAM (Wang et al., "SS-CAM: Smoothed Score-CAM", arXiv 2006.14255, Eq. 5-7).

Score-CAM whose weights average the confidence over ``num_samples`` noisy copies of each mask (noise on the
mask, the paper's first variant and torch-cam's) or of the input (``noise_on="input"``, the second variant):
w_k = (1/N) Σ_n C(X ∘ (H_k + ε_n)) or (1/N) Σ_n C((X + ε_n) ∘ H_k), ε_n ~ N(0, σ²). Defaults N = 35, σ = 2
(the tutorial's timing settings and torch-cam's). The noise is drawn from ``seed`` at every call, one draw per
sample n shared by every channel and image (as torch-cam shares it across channels): reproducible, and an
image's map does not depend on the rest of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from wsol.cams.base import LayerSpec, check_sampling
from wsol.cams.scorecam import ScoreCAM


class SSCAM(ScoreCAM):
    """Smoothed Score-CAM."""

    def __init__(
        self,
        model: nn.Module,
        target_layer: LayerSpec | Sequence[LayerSpec] | None = None,
        *,
        num_samples: int = 35,
        std: float = 2.0,
        noise_on: Literal["mask", "input"] = "mask",
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, target_layer, **kwargs)
        check_sampling(num_samples, std)
        if noise_on not in ("mask", "input"):
            raise ValueError(f"noise_on: expected 'mask' or 'input', got {noise_on!r}")
        self.num_samples = num_samples
        self.std = std
        self.noise_on = noise_on
        self.seed = seed

    @property
    def num_variants(self) -> int:
        return self.num_samples

    def prepare(self, inputs: Tensor) -> Tensor:
        generator = torch.Generator(device=inputs.device).manual_seed(self.seed)
        shape = (
            (self.num_samples, *inputs.shape[1:])
            if self.noise_on == "input"
            else (self.num_samples, 1, *inputs.shape[2:])
        )
        return self.std * torch.randn(shape, generator=generator, device=inputs.device, dtype=inputs.dtype)

    def perturb(self, images: Tensor, masks: Tensor, variants: Tensor, state: Tensor | None) -> Tensor:
        assert state is not None
        noise = state[variants]
        return images * (masks + noise) if self.noise_on == "mask" else (images + noise) * masks
