"""F-CAM: Belharbi et al., "F-CAM: Full Resolution Class Activation Maps via Guided Parametric Upscaling"
(WACV 2022, arXiv 2109.07069).

A CAM classifier (backbone + pooling head) is trained first with cross-entropy; then it is frozen (eval mode,
no gradient) and a U-Net decoder on its ``stages`` (:mod:`wsol.models.decoder`) learns a two-channel map S at
the input resolution from (Eq. 3, the plain sum of the enabled terms):

* L_SR: partial cross-entropy on seeds drawn at every step from the frozen classifier's CAM of the label
  (:mod:`wsol.methods.seeding`), weight ``lambda_seeds`` (1);
* R(S, X): the dense-CRF loss (:mod:`wsol.methods.crf_loss`), weight ``lambda_crf``;
* ASC: the absolute size constraint Σ S^r ≥ 0 for r ∈ {bg, fg} with the extended log-barrier, weight
  ``lambda_size``, as ``lambda_size / 2 · size_barrier`` (:func:`wsol.methods.losses.size_barrier`); the
  barrier's t grows ×``t_growth`` per decoder epoch up to ``t_max`` (1 → ×1.01 → 10 in the authors' code).

Both stages run in one ``wsol train``: the first ``classifier_epochs`` epochs train the classifier, the others
the decoder (per-stage learning rates through ``decoder_lr_mult``). ``classifier_checkpoint`` (a
``wsol train`` run of method ``cam``) loads a trained classifier instead. The source CAM is the head's
class map (``cam_source="head"``, the paper's) or any post-hoc extractor of :mod:`wsol.cams` on the frozen
classifier (``cam_source="gradcampp"``, ``"layercam"``, ...: the map ``wsol evaluate --cam`` gives). The
localization map is the decoder's foreground probability softmax(S)[:, 1] (class-agnostic); ``output="cam"``
returns the source CAM instead (to compare). Negative images (``negative_classes``, and with
``no_object_negative`` those the dataset declares object-free) get no seed and no size term.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsol.cams import CAM_METHODS, build_extractor
from wsol.methods.base import Batch, LossOutput, Prediction, WSOLMethod
from wsol.methods.cam_baseline import PoolingHeadMethod, minmax_normalize
from wsol.methods.checkpoint import load_checkpoint
from wsol.methods.crf_loss import CRFConfig, dense_crf_loss
from wsol.methods.losses import size_barrier
from wsol.methods.seeding import IGNORE, SeedConfig, sample_seeds, seed_counts
from wsol.models import HeadOutput, WSOLClassifier, build_classifier, select_class_maps
from wsol.models.decoder import UNetDecoder, probe_stages

Options = TypeVar("Options")


def parse_options(cls: type[Options], values: Mapping[str, Any] | None, name: str) -> Options:
    """A frozen options dataclass from a config mapping; unknown keys name ``name`` and the accepted ones."""
    values = dict(values or {})
    accepted = {field.name for field in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - accepted)
    if unknown:
        raise ValueError(f"{name}: unknown option(s) {unknown}; accepted: {sorted(accepted)}")
    return cls(**values)


@dataclass(frozen=True)
class FCAMLossWeights:
    """Weights of the decoder's terms and the log-barrier schedule (F-CAM README: size 0.1, CRF 2e-9)."""

    seeds: float = 1.0
    crf: float = 2e-9
    size: float = 0.1
    negative: float = 0.0
    t_init: float = 1.0
    t_growth: float = 1.01
    t_max: float = 10.0

    def __post_init__(self) -> None:
        if min(self.seeds, self.crf, self.size, self.negative) < 0:
            raise ValueError("loss weights must be >= 0")
        if self.t_init <= 0 or self.t_growth < 1 or self.t_max < self.t_init:
            raise ValueError("log-barrier: expected 0 < t_init <= t_max and t_growth >= 1")


def partial_cross_entropy(logits: Tensor, seeds: Tensor) -> Tensor:
    """Mean cross-entropy over seeded pixels (label != IGNORE); 0 (with a graph) when there is none."""
    if not bool((seeds != IGNORE).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, seeds, ignore_index=IGNORE)


def negative_evidence(logits: Tensor) -> Tensor:
    """NEGEV's term (arXiv 2201.02445 §2): cross-entropy with every pixel labelled background, pixel mean."""
    target = torch.zeros(logits.shape[0], *logits.shape[2:], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, target)


class FCAM(WSOLMethod):
    """F-CAM (registered as ``fcam``); see the module docstring. ``negative_classes`` is NEGEV's option."""

    def __init__(  # noqa: PLR0913  one keyword per key of the YAML's method.options (config schema)
        self,
        num_classes: int,
        backbone: str = "tiny",
        head: str = "gap",
        backbone_options: Mapping[str, Any] | None = None,
        head_options: Mapping[str, Any] | None = None,
        large_feature_map: bool = False,
        weights: str | None = None,
        classifier_checkpoint: str | None = None,
        classifier_epochs: int = 0,
        decoder_widths: Sequence[int] | None = None,
        decoder_lr_mult: float = 1.0,
        seeds: Mapping[str, Any] | None = None,
        crf: Mapping[str, Any] | None = None,
        loss: Mapping[str, Any] | None = None,
        negative_classes: Sequence[int] = (),
        no_object_negative: bool = False,
        cam_source: str = "head",
        image_mean: Sequence[float] = (0.5, 0.5, 0.5),
        image_std: Sequence[float] = (0.5, 0.5, 0.5),
        output: Literal["decoder", "cam"] = "decoder",
    ) -> None:
        super().__init__(num_classes)
        if classifier_checkpoint is None and classifier_epochs < 1:
            raise ValueError(
                "classifier_epochs: expected >= 1 (epochs training the CAM classifier first), or set "
                "classifier_checkpoint to a trained `cam` run"
            )
        if classifier_checkpoint is not None and classifier_epochs != 0:
            raise ValueError("classifier_epochs must be 0 when classifier_checkpoint loads the classifier")
        if decoder_lr_mult <= 0:
            raise ValueError(f"decoder_lr_mult: expected > 0, got {decoder_lr_mult}")
        bad = [c for c in negative_classes if not 0 <= int(c) < num_classes]
        if bad:
            raise ValueError(f"negative_classes: {bad} are not class indices in [0, {num_classes})")
        if output not in ("decoder", "cam"):
            raise ValueError(f"output: expected 'decoder' or 'cam', got {output!r}")
        if cam_source != "head" and cam_source not in CAM_METHODS:
            raise ValueError(
                f"cam_source: expected 'head' or one of {sorted(CAM_METHODS)}, got {cam_source!r}"
            )
        self.seed_config = parse_options(SeedConfig, seeds, "seeds")
        self.crf_config = parse_options(CRFConfig, crf, "crf")
        self.loss_weights = parse_options(FCAMLossWeights, loss, "loss")
        self.classifier = self._classifier(
            classifier_checkpoint, backbone, head, backbone_options, head_options, weights, large_feature_map
        )
        self.classifier_epochs = int(classifier_epochs)
        self.decoder = UNetDecoder(probe_stages(self.classifier.backbone), decoder_widths)
        self.decoder_lr_mult = float(decoder_lr_mult)
        self.negative_classes = sorted({int(c) for c in negative_classes})
        self.no_object_negative = bool(no_object_negative)
        self.cam_source = cam_source
        self.register_buffer("image_mean", torch.tensor(image_mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("image_std", torch.tensor(image_std, dtype=torch.float32).view(1, 3, 1, 1))
        self.output = output
        self.epochs_done = 0
        self.barrier_t = self.loss_weights.t_init

    def _classifier(
        self,
        checkpoint: str | None,
        backbone: str,
        head: str,
        backbone_options: Mapping[str, Any] | None,
        head_options: Mapping[str, Any] | None,
        weights: str | None,
        large_feature_map: bool,
    ) -> WSOLClassifier:
        """A new classifier from the options, or the trained one of ``checkpoint`` (which fixes them all)."""
        if checkpoint is None:
            return build_classifier(
                backbone,
                head,
                self.num_classes,
                large_feature_map=large_feature_map,
                weights=weights,
                backbone_options=dict(backbone_options or {}),
                head_options=dict(head_options or {}),
            )
        trained = load_checkpoint(checkpoint, "classifier_checkpoint").method
        if not isinstance(trained, PoolingHeadMethod):
            raise ValueError(
                f"classifier_checkpoint: {checkpoint} holds a {type(trained).__name__} run; expected a run "
                "of method 'cam' (a backbone + pooling head)"
            )
        if trained.num_classes != self.num_classes:
            raise ValueError(
                f"classifier_checkpoint: {checkpoint} has {trained.num_classes} classes, the data "
                f"{self.num_classes}"
            )
        return trained.classifier.requires_grad_(False)

    # ------------------------------------------------------------------ stages and state
    @property
    def stage(self) -> Literal["classifier", "decoder"]:
        """``classifier`` for the first ``classifier_epochs`` epochs, then ``decoder``."""
        return "classifier" if self.epochs_done < self.classifier_epochs else "decoder"

    def train(self, mode: bool = True) -> FCAM:
        """The classifier stays in eval mode (BatchNorm statistics frozen) once the decoder trains."""
        super().train(mode)
        if self.stage == "decoder":
            self.classifier.eval()
        return self

    def on_train_epoch_end(self, epoch: int) -> None:
        if self.stage == "decoder":
            self.barrier_t = min(self.barrier_t * self.loss_weights.t_growth, self.loss_weights.t_max)
        self.epochs_done += 1
        self.train(self.training)

    def extra_state_for_checkpoint(self) -> dict[str, Any]:
        return {"epochs_done": self.epochs_done, "barrier_t": self.barrier_t}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self.epochs_done = int(state.get("epochs_done", self.epochs_done))
        self.barrier_t = float(state.get("barrier_t", self.barrier_t))
        self.train(self.training)

    def parameter_groups(self, lr: float) -> list[dict[str, Any]]:
        """Classifier groups (wsolevaluation's split) at ``lr``, decoder at ``lr × decoder_lr_mult``."""
        groups = self.classifier.parameter_groups(lr, new_layers_lr_mult=1.0)
        decoder = [p for p in self.decoder.parameters() if p.requires_grad]
        return [*groups, {"params": decoder, "lr": lr * self.decoder_lr_mult}]

    # ------------------------------------------------------------------ maps
    def cam_model(self) -> tuple[nn.Module, nn.Module]:
        """``(model, target_layer)`` for ``wsol.cams``: the classifier and its backbone's last feature map."""
        return self.classifier, self.classifier.backbone

    def source_cams(self, images: Tensor, head: HeadOutput, classes: Tensor) -> Tensor:
        """Source CAMs (B, H, W) in [0, 1] of ``classes`` at the input size: the head's class maps (bilinear,
        min-max normalised, as the ``cam`` method) or the ``cam_source`` extractor's (as ``--cam``)."""
        if self.cam_source == "head":
            maps = select_class_maps(head.class_maps, classes)[:, None]
            maps = F.interpolate(maps, size=images.shape[-2:], mode="bilinear", align_corners=False)
            return minmax_normalize(maps[:, 0])
        with torch.inference_mode(False), build_extractor(self.cam_source, *self.cam_model()) as extractor:
            return extractor(images.clone(), classes, upsample_to="input")

    def _encode(self, images: Tensor) -> tuple[list[Tensor], HeadOutput]:
        """The backbone's stage maps (the decoder's inputs) and the head's output, in one backbone pass."""
        backbone = self.classifier.backbone
        features = backbone.stages(images)
        return features, self.classifier.head(backbone.stage_output(features[-1]))

    @torch.no_grad()
    def predict(self, images: Tensor, classes: Tensor | None = None) -> Prediction:
        features, head = self._encode(images)
        logits = head.logits
        if self.output == "cam":
            chosen = logits.argmax(dim=1) if classes is None else classes.to(logits.device)
            return Prediction(logits, self.source_cams(images, head, chosen))
        segmentation = self.decoder(features, images.shape[-2:])
        return Prediction(logits, segmentation.softmax(dim=1)[:, 1])

    # ------------------------------------------------------------------ losses
    def training_loss(self, batch: Batch) -> LossOutput:
        images, labels = batch["image"], batch["label"]
        if self.stage == "classifier":
            loss = F.cross_entropy(self.classifier(images).logits, labels)
            return LossOutput(loss, {"classifier_ce": loss.detach()})
        with torch.no_grad():
            features, head = self._encode(images)
            cams = self.source_cams(images, head, labels)
        segmentation = self.decoder([f.detach() for f in features], images.shape[-2:])
        return self.decoder_loss(segmentation, cams, images, self.negatives(labels, batch.get("has_object")))

    def negatives(self, labels: Tensor, has_object: Tensor | None) -> Tensor:
        """(B,) bool: images of ``negative_classes`` or, with ``no_object_negative``, declared object-free."""
        negative = torch.isin(labels, labels.new_tensor(self.negative_classes))
        if self.no_object_negative and has_object is not None:
            negative |= ~has_object.to(device=labels.device, dtype=torch.bool)
        return negative

    def raw_rgb(self, images: Tensor) -> Tensor:
        """Un-normalised images in [0, 255] (the CRF's colour space)."""
        return ((images * self.image_std + self.image_mean) * 255.0).clamp(0.0, 255.0)

    def decoder_loss(
        self, segmentation: Tensor, cams: Tensor, images: Tensor, negative: Tensor
    ) -> LossOutput:
        """Eq. 3 of F-CAM (+ NEGEV's negative evidence) for decoder logits (B, 2, H, W); ``negative`` (B,)."""
        w = self.loss_weights
        seeds = sample_seeds(cams, self.seed_config)
        seeds[negative] = IGNORE
        probs = segmentation.softmax(dim=1)
        zero = segmentation.sum() * 0.0
        terms = {"seeds_ce": partial_cross_entropy(segmentation, seeds)}
        terms["crf"] = dense_crf_loss(probs, self.raw_rgb(images), self.crf_config) if w.crf > 0 else zero
        positive = ~negative
        size = size_barrier(probs[positive, 1], self.barrier_t) if bool(positive.any()) else zero
        terms["size"] = size / 2.0
        terms["negative"] = negative_evidence(segmentation[negative]) if bool(negative.any()) else zero
        total = (
            w.seeds * terms["seeds_ce"]
            + w.crf * terms["crf"]
            + w.size * terms["size"]
            + w.negative * terms["negative"]
        )
        fg, bg = seed_counts(seeds)
        logged = {name: value.detach() for name, value in terms.items()}
        counts = {"fg_seed_px": fg, "bg_seed_px": bg}
        logged.update({k: segmentation.new_tensor(float(v)) for k, v in counts.items()}, loss=total.detach())
        return LossOutput(total, logged)
