"""IS-CAM (Naidu et al., "IS-CAM: Integrated Score-CAM", arXiv 2010.03023, Eq. 4-5 / Algorithm 1).

Score-CAM whose weights integrate the confidence along the path from the empty mask to H_k, as integrated
gradients do: w_k = (1/N) Σ_{i=1..N} C(X ∘ s_i H_k). ``path="linear"`` uses s_i = i/N (the Riemann sum of the
integral, our reading of the paper's text); ``path="cumulative"`` uses the running sum of Algorithm 1,
s_i = Σ_{p ≤ i} p/N = i(i+1)/(2N) (torch-cam's recent formula). Default N = 10 (the tutorial's setting).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from wsol.cams.base import LayerSpec, check_sampling
from wsol.cams.scorecam import ScoreCAM


class ISCAM(ScoreCAM):
    """Integrated Score-CAM."""

    def __init__(
        self,
        model: nn.Module,
        target_layer: LayerSpec | Sequence[LayerSpec] | None = None,
        *,
        num_samples: int = 10,
        path: Literal["linear", "cumulative"] = "linear",
        **kwargs: Any,
    ) -> None:
        super().__init__(model, target_layer, **kwargs)
        check_sampling(num_samples)
        if path not in ("linear", "cumulative"):
            raise ValueError(f"path: expected 'linear' or 'cumulative', got {path!r}")
        self.num_samples = num_samples
        self.path = path

    @property
    def num_variants(self) -> int:
        return self.num_samples

    def prepare(self, inputs: Tensor) -> Tensor:
        steps = torch.arange(1, self.num_samples + 1, device=inputs.device, dtype=inputs.dtype)
        n = self.num_samples
        return steps / n if self.path == "linear" else steps * (steps + 1) / (2 * n)

    def perturb(self, images: Tensor, masks: Tensor, variants: Tensor, state: Tensor | None) -> Tensor:
        assert state is not None
        return images * masks * state[variants].view(-1, 1, 1, 1)
