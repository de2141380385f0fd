"""Learned weight map (seed ``002``): generator shape, loss terms, frozen f, method II, options."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from wsol.methods import METHODS, build_method
from wsol.methods.base import Batch, LossOutput, Prediction, WSOLMethod
from wsol.methods.checkpoint import CHECKPOINT_KEY, load_checkpoint
from wsol.methods.weight_map import (
    SiameseEmbedding,
    WeightMapMethod,
    discrepancy,
    inner_triplet_loss,
)
from wsol.methods.weight_map_generator import SkipDecoder, WeightMapGenerator, build_generator
from wsol.models import build_classifier


class TinyStagedEncoder(nn.Module):
    """ResNet-like stage layout (H/2, H/4 max-pool, H/4, H/8, H/16, H/32) with BatchNorm, a few channels."""

    stage_channels = (4, 4, 6, 8, 8, 12)

    def __init__(self) -> None:
        super().__init__()
        c = self.stage_channels
        self.stem = nn.Sequential(nn.Conv2d(3, c[0], 3, 2, 1), nn.BatchNorm2d(c[0]), nn.ReLU())
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.layers = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(c[1], c[2], 3, 1, 1), nn.BatchNorm2d(c[2]), nn.ReLU()),
                nn.Sequential(nn.Conv2d(c[2], c[3], 3, 2, 1), nn.BatchNorm2d(c[3]), nn.ReLU()),
                nn.Sequential(nn.Conv2d(c[3], c[4], 3, 2, 1), nn.BatchNorm2d(c[4]), nn.ReLU()),
                nn.Sequential(nn.Conv2d(c[4], c[5], 3, 2, 1), nn.BatchNorm2d(c[5]), nn.ReLU()),
            ]
        )
        self.out_channels = c[5]

    def stages(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        out = [x, self.pool(x)]
        for layer in self.layers:
            out.append(layer(out[-1]))
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self.stages(x)[-1]


class TinyClassifier(nn.Module):
    """images -> logits, with BatchNorm buffers to check that a frozen f keeps its statistics."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU())
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


class TinyPoolingMethod(WSOLMethod):
    """A stand-in for a pooling-head run (method ``cam``): a ``WSOLClassifier`` named ``classifier``."""

    def __init__(self, num_classes: int, weights: str | None = None) -> None:
        super().__init__(num_classes)
        if weights is not None:
            raise AssertionError("rebuilding a trained run must not load pretrained weights again")
        self.classifier = build_classifier("tiny", "gap", num_classes)

    def predict(self, images: Tensor, classes: Tensor | None = None) -> Prediction:
        logits = self.classifier(images).logits
        return Prediction(logits, images.new_zeros(images.shape[0], *images.shape[-2:]))

    def training_loss(self, batch: Batch) -> LossOutput:
        raise NotImplementedError


def _batch(n: int = 6, size: int = 32, num_classes: int = 3) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(1)
    return {
        "image": torch.randn(n, 3, size, size, generator=g),
        "label": torch.arange(n) % num_classes,
    }


def _method_one(**options: object) -> WeightMapMethod:
    return WeightMapMethod(
        3, classifier=TinyClassifier(), generator=WeightMapGenerator(TinyStagedEncoder()), **options
    )


def _sgd_steps(method: WeightMapMethod, batch: dict[str, Tensor], steps: int = 3) -> list[float]:
    optimizer = torch.optim.SGD(method.parameter_groups(0.1)[0]["params"], lr=0.1, momentum=0.9)
    method.train()
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        terms = method.training_step(batch, lambda loss: loss.backward())
        optimizer.step()
        losses.append(float(terms["loss"]))
    return losses


# ---------------------------------------------------------------------------------------------- generator
@pytest.mark.parametrize("size", [(32, 32), (40, 56)])
def test_generator_map_is_in_unit_interval_at_input_resolution(size: tuple[int, int]) -> None:
    generator = WeightMapGenerator(TinyStagedEncoder())
    maps = generator(torch.randn(2, 3, *size))
    assert maps.shape == (2, *size)
    assert bool(((maps > 0) & (maps < 1)).all())


def test_generator_on_the_library_tiny_backbone() -> None:
    """``tiny`` keeps layer3/layer4 at stride 8: the blocks without a size change must not up-sample."""
    generator = build_generator("tiny")
    images = torch.randn(2, 3, 40, 48)
    sizes = [tuple(f.shape[-2:]) for f in generator.encoder.stages(images)]
    assert sizes[-1] == sizes[-2] == (5, 6)
    assert generator(images).shape == (2, 40, 48)


def test_decoder_follows_the_skip_layout() -> None:
    decoder = SkipDecoder((64, 64, 64, 128, 256, 512))  # ResNet-18 stage widths
    # Five up-sampling blocks; each outputs its skip's width, the last one a 1-channel logit.
    assert len(decoder.blocks) == 5
    firsts = [block.body[0] for block in decoder.blocks]
    assert [(c.in_channels, c.out_channels) for c in firsts] == [
        (512 + 256, 256),
        (256 + 128, 128),
        (128 + 64, 64),
        (64 + 64, 64),
        (64 + 64, 1),
    ]
    assert not isinstance(decoder.blocks[-1].body[-1], (nn.ReLU, nn.BatchNorm2d))
    with pytest.raises(ValueError, match="at least 2"):
        SkipDecoder((8,))
    with pytest.raises(TypeError, match="stages"):
        WeightMapGenerator(nn.Conv2d(3, 3, 1))


# ---------------------------------------------------------------------------------------------- loss terms
def test_discrepancy_hand_computed() -> None:
    full = torch.tensor([[0.0, math.log(3.0)]])  # softmax = (1/4, 3/4), argmax 1
    masked = torch.tensor([[0.0, 0.0]])  # log softmax = (-ln 2, -ln 2)
    assert discrepancy(masked, full, "soft").item() == pytest.approx(math.log(2.0))
    assert discrepancy(masked, full, "hard").item() == pytest.approx(math.log(2.0))
    # Equal distributions: the soft CE equals the entropy of p = (1/4, 3/4); the hard CE is -ln(3/4).
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert discrepancy(full, full, "soft").item() == pytest.approx(entropy)
    assert discrepancy(full, full, "hard").item() == pytest.approx(-math.log(0.75))
    assert discrepancy(full, full, "label", torch.tensor([0])).item() == pytest.approx(-math.log(0.25))
    with pytest.raises(ValueError, match="labels"):
        discrepancy(full, full, "label")
    with pytest.raises(ValueError, match="target"):
        discrepancy(full, full, "kl")  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(min_value=-5, max_value=5), min_size=2, max_size=6))
def test_soft_discrepancy_is_stationary_when_the_masked_output_matches(values: list[float]) -> None:
    full = torch.tensor([values])
    masked = full.clone().requires_grad_(True)
    discrepancy(masked, full, "soft").backward()
    assert masked.grad is not None
    assert torch.allclose(masked.grad, torch.zeros_like(masked.grad), atol=1e-6)


def test_method_one_total_is_discrepancy_plus_lambda_times_mean_map() -> None:
    batch = _batch()
    for lam in (0.0, 1.0, 2.5):
        method = _method_one(lambda_l1=lam).train()
        out = method.training_loss(batch)
        maps = method.weight_map(batch["image"])
        assert out.terms["l1"].item() == pytest.approx(maps.mean().item(), rel=1e-6)
        expected = out.terms["discrepancy"] + lam * out.terms["l1"]
        assert out.total.item() == pytest.approx(expected.item(), rel=1e-6)


def test_gradient_reaches_g_and_not_f() -> None:
    method = _method_one()
    method.train()
    method.training_loss(_batch()).total.backward()
    assert method.generator is not None and method.classifier is not None
    generator_grads = [p.grad for p in method.generator.parameters()]
    assert all(g is not None for g in generator_grads)
    assert sum(float(g.abs().sum()) for g in generator_grads if g is not None) > 0
    assert all(p.grad is None and not p.requires_grad for p in method.classifier.parameters())
    trainable = {id(p) for group in method.parameter_groups(0.1) for p in group["params"]}
    assert trainable == {id(p) for p in method.generator.parameters()}


def test_frozen_classifier_parameters_and_buffers_do_not_move() -> None:
    method = _method_one()
    assert method.classifier is not None and method.generator is not None
    before_f = {k: v.clone() for k, v in method.classifier.state_dict().items()}
    before_g = {k: v.clone() for k, v in method.generator.state_dict().items()}
    _sgd_steps(method, _batch(), steps=3)
    assert method.training and method.generator.training
    assert not any(m.training for m in method.classifier.modules())
    for key, value in method.classifier.state_dict().items():
        assert torch.equal(value, before_f[key]), key
    moved = [k for k, v in method.generator.state_dict().items() if not torch.equal(v, before_g[k])]
    assert any(k.endswith("running_mean") for k in moved)  # g's BatchNorm does train
    assert any(k.endswith("weight") for k in moved)


def test_l1_term_shrinks_the_map() -> None:
    """With R alone (a classifier that ignores its input makes D constant) g's mean weight goes down."""

    class Constant(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = nn.Parameter(torch.tensor([0.5, -0.5, 0.0]))

        def forward(self, x: Tensor) -> Tensor:
            return self.bias.expand(x.shape[0], 3) + 0.0 * x.mean()

    method = WeightMapMethod(3, classifier=Constant(), generator=WeightMapGenerator(TinyStagedEncoder()))
    batch = _batch()
    losses = _sgd_steps(method, batch, steps=5)
    assert losses[-1] < losses[0]


def test_predict_returns_frozen_logits_and_the_map() -> None:
    method = _method_one().eval()
    images = _batch()["image"]
    prediction = method.predict(images)
    assert method.classifier is not None
    assert torch.allclose(prediction.logits, method.classifier(images))
    assert prediction.maps.shape == (6, 32, 32)
    assert torch.equal(prediction.maps, method.predict(images, classes=torch.zeros(6, dtype=torch.long)).maps)
    assert prediction.masks is None


def test_same_seed_same_numbers() -> None:
    losses = []
    for _ in range(2):
        torch.manual_seed(3)
        losses.append(_sgd_steps(_method_one(), _batch(), steps=2))
    assert losses[0] == losses[1]


# ---------------------------------------------------------------------------------------------- method II
def test_inner_triplet_hand_computed() -> None:
    full = torch.zeros(2, 2)
    foreground = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    background = torch.tensor([[3.0, 0.0], [0.0, 2.5]])
    # max(1 - 3 + 1, 0) = 0 ; max(2 - 2.5 + 1, 0) = 0.5
    assert inner_triplet_loss(full, foreground, background).item() == pytest.approx(0.25)


def _siamese() -> SiameseEmbedding:
    return SiameseEmbedding(TinyStagedEncoder(), num_classes=3, embedding_dim=5)


def test_siamese_pretraining_trains_f_and_fills_prototypes() -> None:
    method = WeightMapMethod(3, method="II", phase="pretrain_siamese", siamese=_siamese())
    assert method.generator is None and method.siamese is not None
    batch = _batch(n=9)
    out = method.training_loss(batch)
    out.total.backward()
    assert all(p.grad is not None for p in method.siamese.parameters())
    assert out.terms["triplets"].item() == 9
    assert bool(method.siamese.prototype_seen.all())
    prediction = method.eval().predict(batch["image"])
    assert prediction.logits.shape == (9, 3)
    assert torch.equal(prediction.maps, torch.ones(9, 32, 32))  # no g in this phase: the all-ones map
    # The nearest-prototype score is minus the distance to each class mean.
    embeddings = method.siamese(batch["image"])
    assert torch.allclose(prediction.logits, -torch.cdist(embeddings, method.siamese.prototypes), atol=1e-5)


def test_method_two_gradient_reaches_g_only_and_terms_add_up() -> None:
    siamese = _siamese()
    method = WeightMapMethod(
        3, method="II", siamese=siamese, generator=WeightMapGenerator(TinyStagedEncoder()), lambda_l1=0.5
    )
    before = {k: v.clone() for k, v in siamese.state_dict().items()}
    batch = _batch()
    method.train()
    out = method.training_loss(batch)
    expected = out.terms["inner"] + out.terms["outer"] + 0.5 * out.terms["l1"]
    assert out.total.item() == pytest.approx(expected.item(), rel=1e-6)
    out.total.backward()
    assert method.generator is not None
    assert all(p.grad is not None for p in method.generator.parameters())
    assert all(p.grad is None and not p.requires_grad for p in siamese.parameters())
    _sgd_steps(method, batch, steps=2)
    assert all(torch.equal(v, before[k]) for k, v in siamese.state_dict().items())
    assert not siamese.training


def test_method_two_ablation_switches_remove_terms() -> None:
    method = WeightMapMethod(
        3,
        method="II",
        siamese=_siamese(),
        generator=WeightMapGenerator(TinyStagedEncoder()),
        triplet={"use_inner": False, "use_outer": False},
    )
    out = method.training_loss(_batch())
    assert out.terms["inner"].item() == 0.0 and out.terms["outer"].item() == 0.0
    assert out.total.item() == pytest.approx(out.terms["l1"].item())


# ---------------------------------------------------------------------------------------------- options
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "III"}, "method: expected"),
        ({"phase": "warmup"}, "phase: expected"),
        ({"target": "kl"}, "target: expected"),
        ({"lambda_l1": -1.0}, "lambda_l1"),
        ({"phase": "pretrain_siamese"}, "belongs to method 'II'"),
    ],
)
def test_bad_options_are_named(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WeightMapMethod(3, classifier=TinyClassifier(), **options)  # type: ignore[arg-type]


def test_method_one_without_classifier_says_what_to_set() -> None:
    with pytest.raises(ValueError, match=r"classifier\.checkpoint"):
        build_method("weight_map", 3, {"generator": WeightMapGenerator(TinyStagedEncoder())})
    with pytest.raises(ValueError, match=r"siamese\.checkpoint"):
        WeightMapMethod(3, method="II", generator=WeightMapGenerator(TinyStagedEncoder()))
    with pytest.raises(FileNotFoundError, match=r"classifier\.weights"):
        WeightMapMethod(3, classifier={"weights": "/nonexistent/f.pth", "backbone": "tiny"})


def _engine_checkpoint(path: Path, method: WSOLMethod, name: str, **options: object) -> Path:
    """A file in the engine's checkpoint format (Lightning state_dict under ``method.``, the engine entry)."""
    torch.save(
        {
            "state_dict": {f"method.{k}": v for k, v in method.state_dict().items()},
            CHECKPOINT_KEY: {
                "config": {"method": {"name": name, "options": options}},
                "num_classes": method.num_classes,
                "method_state": {},
            },
        },
        path,
    )
    return path


def test_classifier_checkpoint_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(METHODS, "tiny_pooling", f"{__name__}:TinyPoolingMethod")
    trained = TinyPoolingMethod(3)
    with torch.no_grad():
        trained.classifier.backbone.bn1.running_mean.fill_(
            0.3
        )  # a non-default buffer must survive the round trip
    path = _engine_checkpoint(tmp_path / "best.ckpt", trained, "tiny_pooling", weights="imagenet")
    loaded = load_checkpoint(path).method
    assert isinstance(loaded, TinyPoolingMethod) and not loaded.training
    method = WeightMapMethod(
        3, classifier={"checkpoint": str(path)}, generator=WeightMapGenerator(TinyStagedEncoder())
    )
    images = _batch()["image"]
    trained.eval()
    assert method.classifier is not None
    assert torch.allclose(method.predict(images).logits, trained.predict(images).logits)
    assert len(list(method.classifier.parameters())) == len(list(trained.parameters()))
    assert all(not p.requires_grad for p in method.classifier.parameters())


def test_checkpoint_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"classifier\.checkpoint"):
        WeightMapMethod(3, classifier={"checkpoint": str(tmp_path / "missing.ckpt")})
    foreign = tmp_path / "foreign.pth"
    torch.save({"weight": torch.zeros(2)}, foreign)
    with pytest.raises(
        ValueError, match=r"classifier\.checkpoint: .*foreign.pth: not a `wsol train` checkpoint"
    ):
        load_checkpoint(foreign, "classifier.checkpoint")
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"not a checkpoint")
    expected = r"classifier\.checkpoint: .*corrupt\.ckpt: not a PyTorch checkpoint"
    with pytest.raises(ValueError, match=expected):
        WeightMapMethod(3, classifier={"checkpoint": str(corrupt)})


def test_user_state_dict_for_named_backbone_and_head(tmp_path: Path) -> None:
    net = build_classifier("tiny", "gap", 3)
    path = tmp_path / "f.pth"
    torch.save(net.state_dict(), path)
    generator = WeightMapGenerator(TinyStagedEncoder())
    method = WeightMapMethod(
        3,
        classifier={"weights": str(path), "backbone": "tiny", "head": "gap"},
        generator=generator,
    )
    images = _batch()["image"]
    assert torch.allclose(method.predict(images).logits, net.eval()(images).logits)
    with pytest.raises(ValueError, match="does not match tiny \\+ gap"):
        WeightMapMethod(3 + 1, classifier={"weights": str(path), "backbone": "tiny", "head": "gap"})
