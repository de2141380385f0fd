"""Smooth Grad-CAM++ (Omeiza et al., arXiv 1908.01224, Eq. 8-10).

The first three powers of the gradient g = ∂S_c/∂A are averaged over ``num_samples`` noisy copies
x + N(0, std²) of the input (SmoothGrad) and put into the Grad-CAM++ closed form:
α = mean(g²) / (2 mean(g²) + Σ_ab A mean(g³)), w_k = Σ_ij α ReLU(mean(g)), M = ReLU(Σ_k w_k A_k), where A
are the activations of the clean input. Defaults n = 4, σ = 0.3 (on the normalised input) follow torch-cam,
whose numerator is also the averaged g²; yiskw713's code instead averages 25 normalised Grad-CAM++ maps.
The noise is drawn from ``seed`` at every call and shared by the images of a batch, so a call is reproducible
and each image's map does not depend on the rest of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from wsol.cams.base import BaseCAM, CAMContext, LayerSpec, check_sampling
from wsol.cams.gradcampp import gradcampp_weights


class SmoothGradCAMPlusPlus(BaseCAM):
    """Smooth Grad-CAM++: Grad-CAM++ with gradient powers averaged over noisy inputs."""

    needs_gradients = True

    def __init__(
        self,
        model: nn.Module,
        target_layer: LayerSpec | Sequence[LayerSpec] | None = None,
        *,
        num_samples: int = 4,
        std: float = 0.3,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, target_layer, **kwargs)
        check_sampling(num_samples, std)
        self.num_samples = num_samples
        self.std = std
        self.seed = seed

    def compute_maps(self, context: CAMContext) -> list[Tensor]:
        inputs = context.inputs
        generator = torch.Generator(device=inputs.device).manual_seed(self.seed)
        noise = torch.randn(
            (self.num_samples, *inputs.shape[1:]),
            generator=generator,
            device=inputs.device,
            dtype=inputs.dtype,
        )
        # moments[layer][p] accumulates g^(p+1) over the noisy samples.
        moments = [[torch.zeros_like(a) for _ in range(3)] for a in context.activations]
        for sample in range(self.num_samples):
            outputs, raw = self.forward_with_hooks(inputs + self.std * noise[sample], grad=True)
            for layer, grad in enumerate(self.gradients(context, outputs, raw)):
                moments[layer] = [m + grad.pow(p + 1) for p, m in enumerate(moments[layer])]
        maps = []
        for activations, (g1, g2, g3) in zip(context.activations, moments, strict=True):
            n = self.num_samples
            weights = gradcampp_weights(activations, g1 / n, g2 / n, g3 / n)
            maps.append(torch.einsum("bk,bkhw->bhw", weights, activations))
        return maps
