"""Min-max entropy WSOL (Belharbi et al., arXiv 1907.12934) and its max-min uncertainty
follow-up (Belharbi et al., IEEE TMI 2022).

A localizer M (backbone + WILDCAT head) predicts class maps and an auxiliary class posterior; the maps give a
pseudo-binary mask M⁺ that splits the image into a decidable region X⁺ = X ⊙ M⁺ and an undecidable region
X⁻ = X ⊙ (1 − M⁺). A classifier C (same backbone, its own WILDCAT head, input rescaled) must be certain on X⁺
(cross-entropy, Eq. 3) and uncertain on X⁻ (cross-entropy to the uniform distribution, Eq. 6, or negative
entropy in the TMI's EEM variant); M is also trained with its own cross-entropy (Eq. 8). During training the
mask can be completed by recursive erasing with trust coefficients (§3.4, :mod:`wsol.methods.erasing`); the
TMI variant adds an absolute size constraint on both regions with the extended log-barrier.

Constants and procedure follow the authors' public code (sbelharbi/wsol-min-max-entropy-interpretability,
sbelharbi/deep-wsl-histo-min-max-uncertainty).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsol.methods.base import Backward, Batch, LossOutput, Prediction, WSOLMethod
from wsol.methods.erasing import ErasingOptions, ErasingResult, recursive_erasing
from wsol.methods.losses import cross_entropy, cross_entropy_to_uniform, negative_entropy, size_barrier
from wsol.methods.options import (
    BackboneSpec,
    WildcatOptions,
    require,
    require_choice,
    require_number,
    section,
)
from wsol.models import build_backbone, build_head
from wsol.normalize import minmax_normalize as normalize_maps

__all__ = [
    "MaskOptions",
    "MaskedBatchNorm",
    "MinMaxEntropy",
    "Normalization",
    "SizeConstraint",
    "Variant",
    "aggregate_class_maps",
    "bilinear_matrix",
    "masked_batchnorm",
    "minmax_normalize",
    "pseudo_binary_mask",
    "region_mask",
    "upscale_bilinear",
]

Normalization = Literal["per_sample", "batch"]
Variant = Literal["paper", "sem", "eem"]
MaskedBatchNorm = Literal["update", "frozen", "eval"]
"""How BatchNorm layers treat forwards of masked or erased images (X⁺, X⁻, X^t for t ≥ 1). ``"update"``: like
clean ones (the paper's code), so the running statistics, used at inference on clean images, mix all of them.
``"frozen"``: normalise with the batch's own statistics but leave the running ones untouched. ``"eval"``:
normalise with the running statistics, as inference does. Clean images always update them."""
ClassSource = Literal["masked", "localizer"]
"""Where :meth:`MinMaxEntropy.predict` takes the class from: ``"masked"`` = argmax C(X⁺) (the paper's and
the reference code's inference), ``"localizer"`` = argmax of the localizer's own pooled scores s on the clean
image (docs/minmax_entropy.md, "The price in classification error")."""


def aggregate_class_maps(class_maps: Tensor, scores: Tensor) -> Tensor:
    """Class-agnostic map M = Σ_k softmax(s)_k · A_k weighted by the localizer's posterior (arXiv 1907.12934
    §3.3).

    ``class_maps`` (B, K, h, w), ``scores`` (B, K) -> (B, 1, h, w).
    """
    if class_maps.ndim != 4 or scores.shape != class_maps.shape[:2]:
        raise ValueError(
            f"expected class_maps (B, K, h, w) and scores (B, K), got {tuple(class_maps.shape)} and "
            f"{tuple(scores.shape)}"
        )
    weights = torch.softmax(scores, dim=1)
    return torch.einsum("bk,bkhw->bhw", weights, class_maps).unsqueeze(1)


def minmax_normalize(maps: Tensor, mode: Normalization = "per_sample") -> Tensor:
    """(M − min)/(max − min) of (B, 1, H, W) maps, per sample (default) or over the whole batch.

    ``"batch"`` reproduces the reference code, whose authors call it a bug (reference ``models.py``); it makes
    a sample's mask depend on the other images in the batch. Constant or non-finite maps normalise to 0
    (:mod:`wsol.normalize`).
    """
    if mode not in ("per_sample", "batch"):
        raise ValueError(f"normalization must be 'per_sample' or 'batch', got {mode!r}")
    return normalize_maps(maps, dims=maps.ndim - 1 if mode == "per_sample" else maps.ndim)


def pseudo_binary_mask(normalized: Tensor, omega: float, sigma: float) -> Tensor:
    """M⁺ = sigmoid(ω (x − σ)): ≈1 where x > σ, ≈0 below (arXiv 1907.12934 §3.3, Eq. 11)."""
    return torch.sigmoid(omega * (normalized - sigma))


def bilinear_matrix(out_size: int, in_size: int, device: torch.device | None = None) -> Tensor:
    """(out_size, in_size) weights of 1-D linear interpolation with ``align_corners=True``.

    Output position i samples the input at x = i (in − 1)/(out − 1); its row holds 1 − frac at ⌊x⌋ and frac at
    ⌊x⌋ + 1.
    """
    if out_size < 1 or in_size < 1:
        raise ValueError(f"interpolation sizes must be >= 1, got out={out_size}, in={in_size}")
    weights = torch.zeros(out_size, in_size, device=device)
    if in_size == 1:
        return weights + 1.0
    positions = torch.linspace(0.0, in_size - 1.0, out_size, device=device)
    low = positions.floor().clamp(max=in_size - 2)
    rows = torch.arange(out_size, device=device)
    weights[rows, low.long()] = 1.0 - (positions - low)
    weights[rows, low.long() + 1] = positions - low
    return weights


def upscale_bilinear(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear upscaling (``align_corners=True``) of (B, C, h, w) maps as two fixed matrix products.

    Same values as ``F.interpolate(..., mode="bilinear", align_corners=True)``, but its backward is a matrix
    product too, which is deterministic on GPU. Non-determinism of the interpolation backward was the paper's
    only reason to detach the upscaled map (arXiv 1907.12934 footnote 5).
    """
    rows = bilinear_matrix(size[0], maps.shape[-2], maps.device).to(maps.dtype)
    cols = bilinear_matrix(size[1], maps.shape[-1], maps.device).to(maps.dtype)
    return torch.einsum("Hh,bchw,Ww->bcHW", rows, maps, cols)


@contextmanager
def masked_batchnorm(module: nn.Module, mode: MaskedBatchNorm) -> Iterator[None]:
    """BatchNorm behaviour of ``module`` for a forward of masked images (see :data:`MaskedBatchNorm`).

    ``"frozen"`` sets the momentum to 0 (running = 1 · running + 0 · batch) for the duration of the block.
    """
    layers = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    if mode == "update" or not layers:
        yield
        return
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        if mode == "eval":
            layer.eval()
        else:
            layer.momentum = 0.0
    try:
        yield
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.train()
            layer.momentum = momentum


def region_mask(
    class_maps: Tensor,
    scores: Tensor,
    size: tuple[int, int],
    omega: float = 8.0,
    sigma: float = 0.5,
    normalization: Normalization = "per_sample",
    detach: bool = True,
) -> Tensor:
    """The decidable-region mask M⁺ (B, 1, H, W) at input size ``size`` from the localizer's outputs (§3.3).

    Aggregate with the posterior, upscale bilinearly (``align_corners=True`` as the reference, by
    :func:`upscale_bilinear`), optionally detach the upscaled map (paper footnote 5), min-max normalise, then
    the pseudo-binary sigmoid.
    """
    aggregated = aggregate_class_maps(class_maps, scores)
    upscaled = upscale_bilinear(aggregated, size)
    if detach:
        upscaled = upscaled.detach()
    return pseudo_binary_mask(minmax_normalize(upscaled, normalization), omega, sigma)


@dataclass(frozen=True)
class MaskOptions:
    """The pseudo-binary mask M⁺ = sigmoid(ω (x − σ)) (arXiv 1907.12934 §3.3, Eq. 11; YAML
    ``method.options.mask``).

    σ follows min(sigma + sigma_step · epochs, sigma_max) (TMI: 0.15 + 0.001/epoch capped at 0.2). ``detach``
    the upscaled map (paper footnote 5); ``normalization`` (:data:`Normalization`) of the min-max scaling.
    """

    omega: float = 8.0
    sigma: float = 0.5
    sigma_step: float = 0.0
    sigma_max: float | None = None
    detach: bool = True
    normalization: Normalization = "per_sample"

    def __post_init__(self) -> None:
        require_number("omega", self.omega, low=0.0, open_low=True)
        require_number("sigma", self.sigma)
        require_number("sigma_step", self.sigma_step)
        if self.sigma_max is not None:
            require_number("sigma_max", self.sigma_max, low=self.sigma)
        require(isinstance(self.detach, bool), "detach", "true or false", self.detach)
        require_choice("normalization", self.normalization, ("per_sample", "batch"))


@dataclass(frozen=True)
class SizeConstraint:
    """The TMI's absolute size constraint on both regions with the extended log-barrier (YAML
    ``method.options.size_constraint``): t ← min(init_t · t_growth^epochs, max_t) (TMI: 5, ×1.01, 10)."""

    enabled: bool = False
    init_t: float = 5.0
    max_t: float = 10.0
    t_growth: float = 1.01

    def __post_init__(self) -> None:
        require(isinstance(self.enabled, bool), "enabled", "true or false", self.enabled)
        require_number("init_t", self.init_t, low=0.0, open_low=True)
        require_number("max_t", self.max_t, low=self.init_t)
        require_number("t_growth", self.t_growth, low=1.0)


class MinMaxEntropy(WSOLMethod):
    """Localizer M + classifier C trained with min-max entropy (arXiv 1907.12934 §3) or max-min uncertainty
    (Belharbi et al., IEEE TMI 2022).

    Options, each a section of YAML ``method.options``: ``backbone``
    (:class:`~wsol.methods.options.BackboneSpec`, shared by M and C, as in the reference code), ``wildcat``
    (:class:`~wsol.methods.options.WildcatOptions`, both heads), ``mask`` (:class:`MaskOptions`, σ schedule
    included), ``erasing`` (:class:`~wsol.methods.erasing.ErasingOptions`; training-only) and
    ``size_constraint`` (:class:`SizeConstraint`), each a dataclass or a mapping of its fields.

    ``variant``: ``"paper"`` = Eq. 6 cross-entropy to uniform on X⁻ with the natural log (arXiv code);
    ``"sem"`` / ``"eem"`` = the TMI regularisers (cross-entropy to uniform / negative entropy) in bits, as the
    TMI code computes them. ``lambda_neg`` weighs that term (1 in the arXiv paper, 1e-7 in the TMI GlaS
    setup); ``pos_weight`` and ``loc_weight`` weigh CE(C(X⁺)) and M's own CE. C sees its input rescaled by
    ``classifier_scale``. ``masked_bn`` (:data:`MaskedBatchNorm`) keeps masked and erased images out of
    BatchNorm's running statistics. The samples left out by ``erasing.exclude_untrusted`` are logged as
    ``untrusted_share``. ``class_source`` (:data:`ClassSource`) picks the predicted class. The paper's
    behaviour is ``erasing.exclude_untrusted=false, masked_bn="update", class_source="masked"``.
    """

    RENAMED_OPTIONS: ClassVar[Mapping[str, str]] = {
        "backbone": "backbone.name",
        "weights": "backbone.weights",
        "large_feature_map": "backbone.large_feature_map",
        "backbone_options": "backbone.options",
        **{key: f"wildcat.{key}" for key in ("kmax", "kmin", "alpha", "modalities", "dropout")},
        **{key: f"mask.{key}" for key in ("omega", "sigma", "sigma_step", "sigma_max", "normalization")},
        "detach_mask": "mask.detach",
        **{f"erasing_{key}": f"erasing.{key}" for key in ("depth", "slope", "start_epoch", "history")},
        "erasing_shrink_batch": "erasing.shrink_batch",
        "exclude_untrusted": "erasing.exclude_untrusted",
        "size_constraint": "size_constraint.enabled",
        **{key: f"size_constraint.{key}" for key in ("init_t", "max_t", "t_growth")},
    }

    def __init__(  # noqa: PLR0913  one keyword per section or key of the YAML's method.options
        self,
        num_classes: int,
        *,
        backbone: BackboneSpec | Mapping[str, Any] | None = None,
        wildcat: WildcatOptions | Mapping[str, Any] | None = None,
        mask: MaskOptions | Mapping[str, Any] | None = None,
        erasing: ErasingOptions | Mapping[str, Any] | None = None,
        size_constraint: SizeConstraint | Mapping[str, Any] | None = None,
        classifier_scale: float = 0.5,
        variant: Variant = "paper",
        pos_weight: float = 1.0,
        lambda_neg: float = 1.0,
        loc_weight: float = 1.0,
        masked_bn: MaskedBatchNorm = "update",
        class_source: ClassSource = "masked",
    ) -> None:
        super().__init__(num_classes)
        self.backbone_spec = section(BackboneSpec, backbone, "backbone")
        self.wildcat = section(WildcatOptions, wildcat, "wildcat")
        self.mask = section(MaskOptions, mask, "mask")
        self.erasing = section(ErasingOptions, erasing, "erasing")
        self.size_constraint = section(SizeConstraint, size_constraint, "size_constraint")
        require_number("classifier_scale", classifier_scale, low=0.0, high=1.0, open_low=True)
        require_choice("variant", variant, ("paper", "sem", "eem"))
        require_choice("masked_bn", masked_bn, ("update", "frozen", "eval"))
        require_choice("class_source", class_source, ("masked", "localizer"))
        weights = {"pos_weight": pos_weight, "lambda_neg": lambda_neg, "loc_weight": loc_weight}
        for name, weight in weights.items():
            require_number(name, weight, low=0.0)
        self._check_size_constraint()
        spec = self.backbone_spec
        self.backbone = build_backbone(
            spec.name, large_feature_map=spec.large_feature_map, weights=spec.weights, **dict(spec.options)
        )
        channels = self.backbone.out_channels
        self.localizer_head = build_head("wildcat", channels, num_classes, **asdict(self.wildcat))
        self.classifier_head = build_head("wildcat", channels, num_classes, **asdict(self.wildcat))
        self.classifier_scale = classifier_scale
        self.variant: Variant = variant
        self.pos_weight = pos_weight
        self.lambda_neg = lambda_neg
        self.loc_weight = loc_weight
        self.masked_bn: MaskedBatchNorm = masked_bn
        self.class_source: ClassSource = class_source
        self.epoch = 0
        self.sigma = self.mask.sigma
        self.t = self.size_constraint.init_t

    def _check_size_constraint(self) -> None:
        if not self.size_constraint.enabled:
            return
        if self.mask.detach:
            raise ValueError(
                "method.options.size_constraint.enabled needs a differentiable mask: set "
                "method.options.mask.detach=false"
            )
        if self.erasing.depth > 0:
            raise ValueError(
                "method.options.size_constraint.enabled cannot be combined with erasing (erasing "
                "accumulates a detached mask): set method.options.erasing.depth=0"
            )

    # ----------------------------------------------------------------------------------------------- forward
    def localize(self, images: Tensor, normalization: Normalization | None = None) -> tuple[Tensor, Tensor]:
        """Localizer M on clean ``images``: (auxiliary scores s (B, K), mask M⁺ (B, 1, H, W))."""
        output = self.localizer_head(self.backbone(images))
        mask = region_mask(
            output.class_maps,
            output.logits,
            (images.shape[-2], images.shape[-1]),
            omega=self.mask.omega,
            sigma=self.sigma,
            normalization=normalization or self.mask.normalization,
            detach=self.mask.detach,
        )
        return output.logits, mask

    def localize_erased(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`localize` on erased images X^t (t ≥ 1), with the ``masked_bn`` BatchNorm behaviour."""
        with masked_batchnorm(self.backbone, self.masked_bn):
            return self.localize(images)

    def classify(self, images: Tensor) -> Tensor:
        """Classifier C on masked images, bilinearly rescaled by ``classifier_scale`` first (note §3), with
        the ``masked_bn`` BatchNorm behaviour."""
        if self.classifier_scale != 1:
            images = F.interpolate(
                images, scale_factor=self.classifier_scale, mode="bilinear", align_corners=False
            )
        with masked_batchnorm(self.backbone, self.masked_bn):
            return self.classifier_head(self.backbone(images)).logits

    def negative_term(self, logits: Tensor) -> Tensor:
        """Per-sample X⁻ regulariser (B,): Eq. 6 (``paper``, nats), SEM (bits) or EEM (bits) of the TMI."""
        if self.variant == "eem":
            return negative_entropy(logits, log_base=2.0, reduction="none")
        log_base = 2.0 if self.variant == "sem" else None
        return cross_entropy_to_uniform(logits, log_base=log_base, reduction="none")

    # ---------------------------------------------------------------------------------------------- training
    @property
    def erasing_active(self) -> bool:
        """Whether this epoch trains with recursive erasing (u > 0 and the start epoch reached)."""
        return self.erasing.depth > 0 and self.epoch >= self.erasing.start_epoch

    def training_loss(self, batch: Batch) -> LossOutput:
        """Joint objective without erasing, one backward (arXiv 1907.12934 Eq. 9 / TMI objective).

        L = w_loc·CE(s_M, y) + w_pos·CE(C(X⁺), y) + λ·R(C(X⁻)) [+ ψ_t(−s⁺) + ψ_t(−s⁻) with the size
        constraint].
        """
        images, labels = _images_labels(batch)
        scores, mask = self.localize(images)
        loss_loc = cross_entropy(scores, labels)
        classifier_terms = self._classifier_terms(images, labels, mask)
        total = self.loc_weight * loss_loc + classifier_terms.total
        terms = {"loss_loc": loss_loc.detach(), **classifier_terms.terms}
        if self.size_constraint.enabled:
            loss_size = size_barrier(mask, self.t)
            total = total + loss_size
            terms["loss_size"] = loss_size.detach()
        terms["mask_area"] = mask.detach().mean()
        return LossOutput(total=total, terms=terms)

    def training_step(self, batch: Batch, backward: Backward) -> dict[str, Tensor]:
        """One batch; with erasing active, Alg. 1: one backward per localizer step, then one for C's losses.

        Gradients of the localizer CE accumulate across the erasing steps (the engine zeroes them before and
        steps after), so peak memory is that of a single step whatever u is.
        """
        if not self.erasing_active:
            return super().training_step(batch, backward)
        images, labels = _images_labels(batch)
        result = recursive_erasing(
            images,
            labels,
            self.localize,
            backward,
            depth=self.erasing.depth,
            slope=self.erasing.slope,
            loss_weight=self.loc_weight,
            history_rule=self.erasing.history,
            shrink_batch=self.erasing.shrink_batch,
            localize_erased=self.localize_erased,
            keep_first_graph=not self.mask.detach,
        )
        mask = _through_first_step(result) if not self.mask.detach else result.accumulated_mask
        untrusted = result.accumulated_mask.flatten(start_dim=1).amax(dim=1) == 0
        included = ~untrusted if self.erasing.exclude_untrusted else None
        classifier_terms = self._classifier_terms(images, labels, mask, included)
        total = classifier_terms.total
        if result.first_step_loss is not None:
            total = total + result.first_step_loss
        if total.requires_grad:  # False only when every sample was excluded
            backward(total)
        terms = dict(classifier_terms.terms)
        terms["untrusted_share"] = untrusted.float().mean()
        terms["loss_loc"] = result.localizer_loss
        terms["loss"] = classifier_terms.total.detach() + self.loc_weight * result.localizer_loss
        terms["mask_area"] = result.accumulated_mask.mean()
        terms["erasing_steps"] = torch.tensor(float(len(result.active_per_step)))
        terms["erasing_forwarded"] = torch.tensor(sum(result.active_per_step) / images.shape[0])
        return terms

    def _classifier_terms(
        self, images: Tensor, labels: Tensor, mask: Tensor, included: Tensor | None = None
    ) -> LossOutput:
        """w_pos·CE(C(X ⊙ M), y) + λ·R(C(X ⊙ (1 − M))) (arXiv 1907.12934 Eq. 3, 6), averaged over the
        ``included`` samples (all by default; a batch with none included contributes 0)."""
        if included is not None:
            images, labels, mask = images[included], labels[included], mask[included]
        if images.shape[0] == 0:
            zero = mask.sum() * 0.0
            return LossOutput(total=zero, terms={"loss_pos": zero.detach(), "loss_neg": zero.detach()})
        loss_pos = cross_entropy(self.classify(images * mask), labels)
        loss_neg = self.negative_term(self.classify(images * (1.0 - mask))).mean()
        total = self.pos_weight * loss_pos + self.lambda_neg * loss_neg
        return LossOutput(total=total, terms={"loss_pos": loss_pos.detach(), "loss_neg": loss_neg.detach()})

    # ------------------------------------------------------------------------------------------- schedules
    def on_train_epoch_end(self, epoch: int) -> None:
        """Advance σ (+sigma_step per epoch, ≤ sigma_max) and the log-barrier t (×t_growth, ≤ max_t)."""
        self.epoch = epoch + 1
        sigma = self.mask.sigma + self.mask.sigma_step * self.epoch
        self.sigma = sigma if self.mask.sigma_max is None else min(sigma, self.mask.sigma_max)
        size = self.size_constraint
        self.t = min(size.init_t * size.t_growth**self.epoch, size.max_t)

    @torch.no_grad()
    def extra_state_for_checkpoint(self) -> dict[str, Any]:
        """Epoch counter and the current σ and t."""
        return {"epoch": self.epoch, "sigma": self.sigma, "t": self.t}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        """Restore the schedules saved by :meth:`extra_state_for_checkpoint`."""
        missing = {"epoch", "sigma", "t"} - set(state)
        if missing:
            raise KeyError(f"min-max entropy extra state lacks {sorted(missing)}")
        self.epoch = int(state["epoch"])
        self.sigma = float(state["sigma"])
        self.t = float(state["t"])
        if not math.isfinite(self.sigma) or not math.isfinite(self.t):
            raise ValueError(f"non-finite schedule state: sigma={self.sigma}, t={self.t}")

    # ---------------------------------------------------------------------------------------------- predict
    def predict(self, images: Tensor, classes: Tensor | None = None) -> Prediction:
        """Class from C(X⁺) (or the localizer's scores, ``class_source``), map M⁺ (B, H, W), mask M⁺ > 0.5
        (arXiv 1907.12934 §4; no erasing at inference).

        M⁺ is class-agnostic (posterior-weighted aggregation, §3.3), so ``classes`` does not change the map.
        The map is always normalised per sample here (the reference evaluates with batch size 1).
        """
        scores, mask = self.localize(images, normalization="per_sample")
        logits = scores if self.class_source == "localizer" else self.classify(images * mask)
        maps = mask[:, 0]
        return Prediction(logits=logits, maps=maps, masks=maps > 0.5)


def _through_first_step(result: ErasingResult) -> Tensor:
    """R⁺* with the gradient of its step-0 part: the values of R⁺*, and where Ψ(0)·M⁺ is the pixel-wise max,
    the gradient of Ψ(0)·M⁺ (so that C's error reaches the localizer through M⁺, §3.2)."""
    assert result.first_step_mask is not None
    accumulated, first = result.accumulated_mask, result.first_step_mask
    from_first = first.detach() >= accumulated
    return accumulated + torch.where(from_first, first - first.detach(), torch.zeros_like(first))


def _images_labels(batch: Batch) -> tuple[Tensor, Tensor]:
    for key in ("image", "label"):
        if key not in batch:
            raise KeyError(f"min-max entropy needs batch key {key!r}; got keys {sorted(batch)}")
    images, labels = batch["image"], batch["label"]
    if not isinstance(images, Tensor) or images.ndim != 4:
        raise ValueError(
            f"batch['image'] must be a (B, 3, H, W) tensor, got {getattr(images, 'shape', images)}"
        )
    return images, labels
