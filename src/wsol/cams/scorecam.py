"""Score-CAM (Wang et al., CVPR-W 2020, Eq. 3-8) and the shared machinery of its family (SS-CAM, IS-CAM).

Each channel A_k of the target layer is upsampled (bilinear) to the input size and min-max normalised into a
mask H_k ∈ [0, 1]; its weight is the target's confidence on the masked input X ∘ H_k, and
M = ReLU(Σ_k w_k A_k) at the layer's resolution. ``weighting``:

* ``"probability"`` (default): w_k = softmax(f(X ∘ H_k))_c, the authors' released code and torch-cam;
* ``"channel_softmax"``: w = softmax_k(S_c(X ∘ H_k)), the paper's normalisation of the scores over channels
  (Eq. 8, the tutorial's slide; pytorch-grad-cam's variant).

The paper's "increase of confidence" subtracts f(X_b) for a baseline X_b; like the released code we do not
(it is a per-image constant shift of every weight, and cancels under ``channel_softmax``). Constant channels
(max = min) get weight 0 and are not forwarded. The masked forwards are batched over (sample, channel,
variant) units, ``batch_size`` at a time; callable targets give the confidence directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from wsol.cams.base import ActivationWeightedCAM, CAMContext, LayerSpec, minmax_normalize, resize_maps

Weighting = Literal["probability", "channel_softmax"]


class ScoreCAM(ActivationWeightedCAM):
    """Score-CAM; subclasses change how many perturbed copies each mask gets and how they are made."""

    def __init__(
        self,
        model: nn.Module,
        target_layer: LayerSpec | Sequence[LayerSpec] | None = None,
        *,
        batch_size: int = 64,
        weighting: Weighting = "probability",
        **kwargs: Any,
    ) -> None:
        super().__init__(model, target_layer, **kwargs)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if weighting not in ("probability", "channel_softmax"):
            raise ValueError(f"weighting: expected 'probability' or 'channel_softmax', got {weighting!r}")
        self.batch_size = batch_size
        self.weighting = weighting

    @property
    def num_variants(self) -> int:
        """Perturbed copies per mask whose confidences are averaged (1 for Score-CAM)."""
        return 1

    def prepare(self, inputs: Tensor) -> Tensor | None:
        """Per-call state shared by every unit (the noise of SS-CAM); ``None`` for Score-CAM."""
        return None

    def perturb(self, images: Tensor, masks: Tensor, variants: Tensor, state: Tensor | None) -> Tensor:
        """Masked inputs (n, C, H, W) from images (n, C, H, W), masks (n, 1, H, W), variant indices (n,)."""
        return images * masks

    def channel_weights(self, context: CAMContext, layer: int) -> Tensor:
        inputs = context.inputs
        if inputs.ndim != 4:
            raise ValueError(
                f"{type(self).__name__} masks images: inputs must be (B, C, H, W), got {inputs.shape}"
            )
        activations = context.activations[layer]
        batch, channels = activations.shape[:2]
        flat = activations.flatten(2)
        valid = flat.amax(-1) > flat.amin(-1)
        units = valid.nonzero()
        variants = self.num_variants
        rows = units[:, 0].repeat_interleave(variants)
        chans = units[:, 1].repeat_interleave(variants)
        var_index = torch.arange(variants, device=inputs.device).repeat(len(units))
        state = self.prepare(inputs)
        totals = activations.new_zeros(batch, channels)
        size = (inputs.shape[-2], inputs.shape[-1])
        for start in range(0, len(rows), self.batch_size):
            row, chan = rows[start : start + self.batch_size], chans[start : start + self.batch_size]
            masks = minmax_normalize(resize_maps(activations[row, chan], size, "bilinear")).unsqueeze(1)
            masked = self.perturb(inputs[row], masks, var_index[start : start + self.batch_size], state)
            outputs = self.output_selector(self.model(masked))
            if self.weighting == "probability":
                scores = context.targets.confidences(outputs, row)
            else:
                scores = context.targets.scores(outputs, row)
            totals = totals.index_put((row, chan), scores.to(totals.dtype), accumulate=True)
        weights = totals / variants
        if self.weighting == "channel_softmax":
            weights = weights.masked_fill(~valid, torch.finfo(weights.dtype).min).softmax(1)
        return weights * valid
