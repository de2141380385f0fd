"""Learned weight map: Shaharabany & Wolf, "Learning a Weight Map for Weakly-Supervised Localization"
(arXiv 2111.14131).

A generator g (:mod:`wsol.methods.weight_map_generator`) learns a per-pixel weight map M = g(I) against a
frozen network f:

* **Method I** (paper's Eq. 1): ``D(f(I), f(I ⊙ M)) + λ·R(M)`` with f a frozen classifier, D the
  cross-entropy (``target``: ``"soft"`` = soft target softmax(f(I)), our default (docs/weight_map.md);
  ``"hard"`` = argmax f(I); ``"label"`` = the image label, the authors' CLIP variant) and R = mean(M) (the
  L1 norm per pixel), λ = 1.
* **Method II** (paper's Eq. 2-4): f is first trained as a Siamese embedding network with the triplet loss
  (``phase="pretrain_siamese"``), then frozen while g minimises ``L_inner + L_outer + λ·R(M_a)``
  (``phase="generator"``, ``siamese.checkpoint`` = the first phase's checkpoint).

f is frozen: no parameter receives gradients and it stays in eval mode (BatchNorm statistics never move) even
when the method is put in ``train()``, but gradients flow through it to g. Masking multiplies the *normalised*
image (a hidden pixel becomes the dataset mean), as in the authors' code.

Checkpoint selection by the score S (paper's Eq. 6) is done on the maps this method predicts, by the
evaluator and the engine (``docs/weight_map.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wsol.methods.base import Batch, LossOutput, Prediction, WSOLMethod
from wsol.methods.checkpoint import load_checkpoint, read_checkpoint
from wsol.methods.options import require, require_choice, require_integer, require_number, section
from wsol.methods.triplets import sample_triplets, triplet_margin_loss
from wsol.methods.weight_map_generator import WeightMapGenerator, build_generator
from wsol.models import WSOLClassifier, build_backbone, build_classifier

Target = Literal["soft", "hard", "label"]
_TARGETS = ("soft", "hard", "label")
_METHODS = ("I", "II")
_PHASES = ("generator", "pretrain_siamese")


def discrepancy(
    logits_masked: Tensor, logits_full: Tensor, target: Target, labels: Tensor | None = None
) -> Tensor:
    """D of paper's Eq. 1: cross-entropy of f(I ⊙ M) against f(I) (detached), mean over the batch.

    ``soft``: ``-Σ_c softmax(f(I))_c log softmax(f(I⊙M))_c`` (same gradient in g as KL); ``hard``: CE to
    ``argmax f(I)``; ``label``: CE to ``labels``.
    """
    if target == "soft":
        reference = F.softmax(logits_full.detach(), dim=1)
        return -(reference * F.log_softmax(logits_masked, dim=1)).sum(dim=1).mean()
    if target == "hard":
        return F.cross_entropy(logits_masked, logits_full.detach().argmax(dim=1))
    if target == "label":
        if labels is None:
            raise ValueError("target='label' needs the batch labels")
        return F.cross_entropy(logits_masked, labels)
    raise ValueError(f"target: expected one of {_TARGETS}, got {target!r}")


def inner_triplet_loss(full: Tensor, foreground: Tensor, background: Tensor, margin: float = 1.0) -> Tensor:
    """L_inner (Eq. 3): f(I_a) close to f(J^f_a) = f(M_a ⊙ I_a), far from f(J^b_a) = f((1-M_a) ⊙ I_a)."""
    return triplet_margin_loss(full, foreground, background, margin)


class FrozenClassifier(nn.Module):
    """``images -> logits`` of a :class:`~wsol.models.WSOLClassifier` (backbone + pooling head)."""

    def __init__(self, net: WSOLClassifier) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images).logits


class SiameseEmbedding(nn.Module):
    """f of method II: backbone -> global average pooling -> linear (seed: 512 -> 200 for ResNet-18).

    ``prototypes`` (K, D) hold a running mean embedding per class (momentum ``prototype_momentum``),
    updated during pretraining; ``logits`` = minus the distance to each prototype (nearest class mean).
    """

    def __init__(self, backbone: nn.Module, num_classes: int, embedding_dim: int = 200) -> None:
        super().__init__()
        self.backbone = backbone
        self.projection = nn.Linear(int(backbone.out_channels), embedding_dim)
        self.register_buffer("prototypes", torch.zeros(num_classes, embedding_dim))
        self.register_buffer("prototype_seen", torch.zeros(num_classes, dtype=torch.bool))

    def forward(self, images: Tensor) -> Tensor:
        return self.projection(self.backbone(images).mean(dim=(2, 3)))

    @torch.no_grad()
    def update_prototypes(self, embeddings: Tensor, labels: Tensor, momentum: float) -> None:
        for label in labels.unique().tolist():
            mean = embeddings[labels == label].mean(dim=0)
            if bool(self.prototype_seen[label]):
                self.prototypes[label].mul_(momentum).add_(mean, alpha=1.0 - momentum)
            else:
                self.prototypes[label].copy_(mean)
                self.prototype_seen[label] = True

    def logits(self, images: Tensor) -> Tensor:
        distance = torch.cdist(self.forward(images), self.prototypes)
        return torch.where(self.prototype_seen[None, :], -distance, torch.finfo(distance.dtype).min)


def _load_state_dict(path: str | Path, what: str) -> dict[str, Tensor]:
    payload = read_checkpoint(Path(path), what=what)
    if "state_dict" in payload:
        payload = payload["state_dict"]
    if not isinstance(payload, Mapping):
        raise ValueError(f"{what}: {path} holds {type(payload).__name__}, expected a state_dict")
    return dict(payload)


def _freeze(module: nn.Module) -> nn.Module:
    module.requires_grad_(False)
    return module.eval()


@dataclass(frozen=True)
class ClassifierSource:
    """Where method I's frozen classifier f comes from (YAML ``method.options.classifier``): ``checkpoint``
    (a ``wsol train`` checkpoint of a pooling-head run) or ``weights`` (a user's state_dict of
    ``wsol.models.build_classifier(backbone, head, K)``), at most one of the two."""

    checkpoint: str | None = None
    weights: str | None = None
    backbone: str = "resnet18"
    head: str = "wgap"

    def __post_init__(self) -> None:
        for name in ("checkpoint", "weights"):
            value = getattr(self, name)
            require(value is None or isinstance(value, str), name, "null or a path", value)
        if self.checkpoint is not None and self.weights is not None:
            raise ValueError("checkpoint: give one of checkpoint and weights, not both")


@dataclass(frozen=True)
class SiameseOptions:
    """Method II's Siamese f (YAML ``method.options.siamese``): ``backbone`` -> global average pooling ->
    linear to ``embedding_dim``; class prototypes updated with ``prototype_momentum``. In phase ``generator``,
    ``checkpoint`` is the ``phase="pretrain_siamese"`` run that trained it."""

    checkpoint: str | None = None
    backbone: str = "resnet18"
    embedding_dim: int = 200
    prototype_momentum: float = 0.9

    def __post_init__(self) -> None:
        checkpoint = self.checkpoint
        require(checkpoint is None or isinstance(checkpoint, str), "checkpoint", "null or a path", checkpoint)
        require_integer("embedding_dim", self.embedding_dim, 1)
        momentum = self.prototype_momentum
        in_range = isinstance(momentum, int | float) and 0.0 <= momentum < 1.0
        require(in_range, "prototype_momentum", "a number in [0, 1)", momentum)


@dataclass(frozen=True)
class TripletOptions:
    """Triplet losses of method II (YAML ``method.options.triplet``): ``margin`` of Eq. 2-4, and whether the
    generator's loss uses L_inner (Eq. 3) and L_outer (Eq. 4)."""

    margin: float = 1.0
    use_inner: bool = True
    use_outer: bool = True

    def __post_init__(self) -> None:
        require_number("margin", self.margin, low=0.0)
        for name in ("use_inner", "use_outer"):
            value = getattr(self, name)
            require(isinstance(value, bool), name, "true or false", value)


class WeightMapMethod(WSOLMethod):
    """Method I / II of Shaharabany & Wolf behind the :class:`WSOLMethod` protocol (registered as
    ``weight_map``).

    The frozen classifier f is ``classifier``: a module ``images -> logits`` (e.g.
    ``FrozenClassifier(wsol.models.build_classifier(...))``) or where to load it from
    (:class:`ClassifierSource`). Method II's Siamese f is ``siamese``: a :class:`SiameseEmbedding` or its
    :class:`SiameseOptions`; its class scores come from the classifier when one is given (the paper reports
    the same top-1 cls for both methods), otherwise from the Siamese prototypes. ``triplet``:
    :class:`TripletOptions`. ``weights`` (``"imagenet"`` or a ``.pth``) initialises the network the run
    trains: g's ``encoder``, or the Siamese backbone in phase ``pretrain_siamese``. ``generator`` injects a
    ready-made g (tests, Python use). ``seed`` seeds the in-batch triplet draws.
    """

    RENAMED_OPTIONS: ClassVar[Mapping[str, str]] = {
        **{f"classifier_{key}": f"classifier.{key}" for key in ("checkpoint", "weights", "backbone", "head")},
        "siamese_checkpoint": "siamese.checkpoint",
        "siamese_backbone": "siamese.backbone",
        "embedding_dim": "siamese.embedding_dim",
        "prototype_momentum": "siamese.prototype_momentum",
        **{key: f"triplet.{key}" for key in ("margin", "use_inner", "use_outer")},
    }

    def __init__(  # noqa: PLR0913  one keyword per section or key of the YAML's method.options
        self,
        num_classes: int,
        *,
        method: Literal["I", "II"] = "I",
        phase: Literal["generator", "pretrain_siamese"] = "generator",
        encoder: str = "resnet18",
        weights: str | None = None,
        classifier: nn.Module | ClassifierSource | Mapping[str, Any] | None = None,
        siamese: SiameseEmbedding | SiameseOptions | Mapping[str, Any] | None = None,
        triplet: TripletOptions | Mapping[str, Any] | None = None,
        target: Target = "soft",
        lambda_l1: float = 1.0,
        seed: int = 0,
        generator: WeightMapGenerator | None = None,
    ) -> None:
        super().__init__(num_classes)
        require_choice("method", method, _METHODS)
        require_choice("phase", phase, _PHASES)
        if phase == "pretrain_siamese" and method != "II":
            raise ValueError("phase='pretrain_siamese' belongs to method 'II'")
        require_choice("target", target, _TARGETS)
        require_number("lambda_l1", lambda_l1, low=0.0)
        self.method = method
        self.phase = phase
        self.target: Target = target
        self.lambda_l1 = float(lambda_l1)
        self.triplet = section(TripletOptions, triplet, "triplet")
        injected = siamese if isinstance(siamese, SiameseEmbedding) else None
        self.siamese_options = section(SiameseOptions, None if injected else siamese, "siamese")
        self._triplet_generator = torch.Generator().manual_seed(seed)

        self.classifier = self._resolve_classifier(classifier)
        if method == "I" and self.classifier is None:
            raise ValueError(
                "method 'I' needs the frozen classifier f: set method.options.classifier.checkpoint (a `wsol "
                "train` checkpoint) or method.options.classifier.weights (+ classifier.backbone, .head)"
            )
        if self.classifier is not None:
            _freeze(self.classifier)

        self.siamese: SiameseEmbedding | None = None
        self.generator: WeightMapGenerator | None = None
        if method == "II":
            self.siamese = injected if injected is not None else self._resolve_siamese(weights, num_classes)
            if phase == "generator":
                _freeze(self.siamese)
        if phase == "generator":
            self.generator = generator if generator is not None else build_generator(encoder, weights=weights)

    # ------------------------------------------------------------------ construction helpers
    def _resolve_classifier(
        self, classifier: nn.Module | ClassifierSource | Mapping[str, Any] | None
    ) -> nn.Module | None:
        if isinstance(classifier, nn.Module):
            return classifier
        source = section(ClassifierSource, classifier, "classifier")
        if source.checkpoint is not None:
            trained = load_checkpoint(source.checkpoint, "classifier.checkpoint").method
            net = getattr(trained, "classifier", None)
            if not isinstance(net, WSOLClassifier):
                raise ValueError(
                    f"classifier.checkpoint: {source.checkpoint} holds a {type(trained).__name__} without a "
                    "WSOLClassifier `classifier`; expected a pooling-head run (method 'cam')"
                )
            return FrozenClassifier(net)
        if source.weights is not None:
            return FrozenClassifier(self._classifier_from_weights(source))
        return None

    def _classifier_from_weights(self, source: ClassifierSource) -> WSOLClassifier:
        assert source.weights is not None
        state = _load_state_dict(source.weights, "classifier.weights")
        net = build_classifier(source.backbone, source.head, self.num_classes)
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(
                f"classifier.weights: {source.weights} does not match {source.backbone} + {source.head} "
                f"(expected the state_dict of wsol.models.build_classifier({source.backbone!r}, "
                f"{source.head!r}, {self.num_classes})): {str(err).splitlines()[0]}"
            ) from None
        return net

    def _resolve_siamese(self, weights: str | None, num_classes: int) -> SiameseEmbedding:
        options = self.siamese_options
        if self.phase == "pretrain_siamese":
            backbone = build_backbone(options.backbone, weights=weights)
            return SiameseEmbedding(backbone, num_classes, options.embedding_dim)
        if options.checkpoint is None:
            raise ValueError(
                "method 'II', phase 'generator' needs method.options.siamese.checkpoint: the checkpoint of a "
                "phase='pretrain_siamese' run"
            )
        trained = load_checkpoint(options.checkpoint, "siamese.checkpoint").method
        embedding = getattr(trained, "siamese", None)
        if not isinstance(embedding, SiameseEmbedding):
            raise ValueError(
                f"siamese.checkpoint: {options.checkpoint} is not a weight_map run with method 'II', "
                "phase 'pretrain_siamese'"
            )
        return embedding

    # ------------------------------------------------------------------ protocol
    def train(self, mode: bool = True) -> WeightMapMethod:
        """Put g (or the Siamese net being pretrained) in ``mode``; frozen networks stay in eval mode."""
        super().train(mode)
        if self.classifier is not None:
            self.classifier.eval()
        if self.siamese is not None and self.phase == "generator":
            self.siamese.eval()
        return self

    def weight_map(self, images: Tensor) -> Tensor:
        """M = g(I), (B, H, W) in (0, 1)."""
        if self.generator is None:
            raise RuntimeError("phase 'pretrain_siamese' has no generator g")
        return self.generator(images)

    def class_logits(self, images: Tensor) -> Tensor:
        """The frozen classifier's scores, or the Siamese nearest-prototype scores when there is none."""
        if self.classifier is not None:
            return self.classifier(images)
        if self.siamese is None:
            raise RuntimeError("no classifier and no Siamese network")
        return self.siamese.logits(images)

    @torch.no_grad()
    def predict(self, images: Tensor, classes: Tensor | None = None) -> Prediction:
        """logits = f(I); maps = g(I) (class-agnostic, so ``classes`` does not change them).

        In phase ``pretrain_siamese`` there is no g yet: the map is all ones (the "all-ones" baseline).
        """
        logits = self.class_logits(images)
        if self.generator is None:
            maps = images.new_ones(images.shape[0], *images.shape[-2:])
        else:
            maps = self.weight_map(images)
        return Prediction(logits=logits, maps=maps)

    def training_loss(self, batch: Batch) -> LossOutput:
        images: Tensor = batch["image"]
        labels: Tensor = batch["label"]
        if self.phase == "pretrain_siamese":
            return self._siamese_pretraining_loss(images, labels)
        if self.method == "I":
            return self._method_one_loss(images, labels)
        return self._method_two_loss(images, labels)

    # ------------------------------------------------------------------ losses
    def _method_one_loss(self, images: Tensor, labels: Tensor) -> LossOutput:
        """Seed Eq. 1: D(f(I), f(I ⊙ g(I))) + λ·mean(g(I))."""
        assert self.classifier is not None
        maps = self.weight_map(images)
        with torch.no_grad():
            logits_full = self.classifier(images)
        logits_masked = self.classifier(images * maps[:, None])
        d = discrepancy(logits_masked, logits_full, self.target, labels)
        r = maps.mean()
        total = d + self.lambda_l1 * r
        return LossOutput(total, {"loss": total.detach(), "discrepancy": d.detach(), "l1": r.detach()})

    def _method_two_loss(self, images: Tensor, labels: Tensor) -> LossOutput:
        """Seed Eq. 3-4: L_inner + L_outer + λ·mean(M_a), with in-batch triplets for L_outer."""
        assert self.siamese is not None
        maps = self.weight_map(images)[:, None]
        with torch.no_grad():
            full = self.siamese(images)
        foreground = self.siamese(images * maps)
        zero = maps.sum() * 0.0
        inner = zero
        if self.triplet.use_inner:
            background = self.siamese(images * (1.0 - maps))
            inner = inner_triplet_loss(full, foreground, background, self.triplet.margin)
        outer = zero
        if self.triplet.use_outer:
            triplets = sample_triplets(labels, self._triplet_generator)
            outer = triplet_margin_loss(
                foreground[triplets.anchor],
                foreground[triplets.positive],
                foreground[triplets.negative],
                self.triplet.margin,
            )
        r = maps.mean()
        total = inner + outer + self.lambda_l1 * r
        terms = {"loss": total, "inner": inner, "outer": outer, "l1": r}
        return LossOutput(total, {name: value.detach() for name, value in terms.items()})

    def _siamese_pretraining_loss(self, images: Tensor, labels: Tensor) -> LossOutput:
        """Seed Eq. 2 on in-batch triplets; also refreshes the class prototypes used for class scores."""
        assert self.siamese is not None
        embeddings = self.siamese(images)
        triplets = sample_triplets(labels, self._triplet_generator)
        loss = triplet_margin_loss(
            embeddings[triplets.anchor],
            embeddings[triplets.positive],
            embeddings[triplets.negative],
            self.triplet.margin,
        )
        self.siamese.update_prototypes(embeddings.detach(), labels, self.siamese_options.prototype_momentum)
        return LossOutput(loss, {"loss": loss.detach(), "triplets": torch.tensor(float(len(triplets)))})

    def extra_state_for_checkpoint(self) -> dict[str, Any]:
        return {"triplet_generator": self._triplet_generator.get_state()}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        if "triplet_generator" in state:
            self._triplet_generator.set_state(state["triplet_generator"])
