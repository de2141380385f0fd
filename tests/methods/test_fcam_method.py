"""F-CAM / NEGEV as methods: the two stages (classifier, then frozen classifier + decoder), option errors, the
source CAM (the head's or a post-hoc extractor's), negatives, and `wsol train --config fcam|negev` end to end
on a tiny synthetic dataset (32 px)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import wsol.methods.fcam as fcam_module
from wsol.cli.main import main
from wsol.methods import build_method
from wsol.methods.cam_baseline import PoolingHeadMethod
from wsol.methods.fcam import FCAM

TINY = [
    "data.synthetic.train=16",
    "data.synthetic.val=8",
    "data.synthetic.test=8",
    "data.synthetic.image_size=32",
    "data.batch_size=8",
    "trainer.progress_bar=false",
]


def _batch(labels: list[int]) -> dict[str, torch.Tensor]:
    return {"image": torch.randn(len(labels), 3, 32, 32), "label": torch.tensor(labels)}


def test_classifier_stage_then_frozen_classifier_and_trained_decoder() -> None:
    method = FCAM(3, classifier_epochs=1)
    method.train()
    method.training_loss(_batch([0, 1, 2, 0])).total.backward()
    assert all(p.grad is None for p in method.decoder.parameters())
    assert all(p.grad is not None for p in method.classifier.parameters())
    method.zero_grad(set_to_none=True)
    method.on_train_epoch_end(0)
    assert method.stage == "decoder" and not method.classifier.training and method.decoder.training
    norms = [b for b in method.classifier.modules() if isinstance(b, torch.nn.BatchNorm2d)]
    stats = [b.running_mean.clone() for b in norms]
    output = method.training_loss(_batch([0, 1, 2, 0]))
    output.total.backward()
    assert all(p.grad is None for p in method.classifier.parameters())
    assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in method.decoder.parameters())
    assert all(torch.equal(x, b.running_mean) for x, b in zip(stats, norms, strict=True))
    assert {"seeds_ce", "crf", "size", "negative", "fg_seed_px", "loss"} <= set(output.terms)
    # each CAM gives 1 foreground seed dilated to 3×3 (fewer at a border)
    assert 0 < output.terms["fg_seed_px"].item() <= 4 * 9


def test_extra_state_round_trip_restores_stage_and_barrier() -> None:
    method = FCAM(2, classifier_epochs=1)
    for epoch in range(3):
        method.on_train_epoch_end(epoch)
    assert method.barrier_t == pytest.approx(1.01**2)
    fresh = FCAM(2, classifier_epochs=1)
    fresh.load_extra_state(method.extra_state_for_checkpoint())
    assert fresh.stage == "decoder" and fresh.barrier_t == method.barrier_t


def test_source_cam_output_equals_the_cam_method_map() -> None:
    method = FCAM(3, classifier_epochs=1, output="cam").eval()
    baseline = PoolingHeadMethod(3).eval()
    baseline.classifier.load_state_dict(method.classifier.state_dict())
    images, classes = torch.randn(2, 3, 32, 32), torch.tensor([2, 0])
    assert torch.allclose(method.predict(images, classes).maps, baseline.predict(images, classes).maps)
    decoder_maps = FCAM(3, classifier_epochs=1).eval().predict(images).maps
    assert decoder_maps.shape == (2, 32, 32)
    assert float(decoder_maps.min()) >= 0 and float(decoder_maps.max()) <= 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "classifier_epochs"),
        ({"classifier_epochs": 1, "seeds": {"fg": 3}}, "seeds: unknown option"),
        ({"classifier_epochs": 1, "negative_classes": [5]}, "negative_classes"),
        ({"classifier_epochs": 1, "crf": {"scale": 2.0}}, "scale"),
        ({"classifier_epochs": 1, "cam_source": "gradcam+"}, "cam_source: expected 'head' or one of"),
    ],
)
def test_bad_options_name_the_option(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_method("fcam", 3, options)


def test_negev_defaults_to_probability_seeds_and_negative_term() -> None:
    method = build_method("negev", 3, {"classifier_epochs": 1, "negative_classes": [0]})
    assert method.seed_config.rule == "probability" and method.loss_weights.negative == 1.0
    method.on_train_epoch_end(0)
    out = method.training_loss(_batch([0, 1, 2, 1]))
    assert out.terms["negative"].item() > 0
    # no seeds on the negative image: at most 3 images × 9 px
    assert out.terms["fg_seed_px"].item() <= 3 * 9


def _train(out: Path, name: str, config: str, *overrides: str) -> Path:
    argv = ["train", "--config", config, *TINY, f"output_dir={out}", f"name={name}"]
    assert main([*argv, f"data.cache_dir={out / 'cache'}", *overrides]) == 0
    return out / name


def test_cli_trains_both_stages_and_loads_a_trained_classifier(tmp_path: Path) -> None:
    run = _train(tmp_path, "fcam", "fcam", "method.options.classifier_epochs=1", "trainer.max_epochs=2")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["select_on"] == "val/pxap" and 0.0 <= metrics["test"]["test/pxap"] <= 100.0
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["wsol"]["method_state"]["epochs_done"] == 2

    cam = _train(tmp_path, "cam", "cam_gap", "trainer.max_epochs=1")
    checkpoint = cam / "checkpoints" / "best.ckpt"
    loaded = _train(
        tmp_path,
        "negev",
        "negev",
        f"method.options.classifier_checkpoint={checkpoint}",
        "method.options.classifier_epochs=0",
        "trainer.max_epochs=1",
    )
    source = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    trained = torch.load(loaded / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    trained = trained["state_dict"]
    keys = [k for k in source if k.startswith("method.classifier.")]
    assert keys and all(torch.equal(source[k], trained[k]) for k in keys)
    assert any(k.startswith("method.decoder.") for k in trained)


def _minmax(maps: torch.Tensor) -> torch.Tensor:
    low = maps.amin(dim=(1, 2), keepdim=True)
    return (maps - low) / (maps.amax(dim=(1, 2), keepdim=True) - low)


def test_cam_source_map_is_what_seeds_the_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    method = FCAM(3, classifier_epochs=1, cam_source="layercam")
    method.on_train_epoch_end(0)
    images, labels = torch.randn(2, 3, 32, 32), torch.tensor([2, 0])
    # By hand, GAP head s_c = mean_ij (W_c · A_ij + b_c): dS_c/dA_k(i, j) = W_ck / hw at every location, so
    # LayerCAM = ReLU(Σ_k ReLU(W_ck) A_k) / hw; the head's CAM is Σ_k W_ck A_k + b_c. Bilinear, min-max.
    with torch.no_grad():
        features = method.classifier.backbone(images)
        weights = method.classifier.head.classifier.weight[labels, :, 0, 0]
        layercam = torch.einsum("bk,bkhw->bhw", weights.clamp_min(0), features).clamp_min(0)
        head_cam = torch.einsum("bk,bkhw->bhw", weights, features)

    def upsampled(maps: torch.Tensor) -> torch.Tensor:
        return _minmax(torch.nn.functional.interpolate(maps[:, None], size=(32, 32), mode="bilinear")[:, 0])

    seen: list[torch.Tensor] = []
    real_sampler = fcam_module.sample_seeds
    monkeypatch.setattr(
        fcam_module, "sample_seeds", lambda cams, config: seen.append(cams) or real_sampler(cams, config)
    )
    method.train().training_loss({"image": images, "label": labels}).total.backward()
    assert torch.allclose(seen[0], upsampled(layercam), atol=1e-5)
    assert not torch.allclose(seen[0], upsampled(head_cam), atol=1e-2)
    # output="cam" returns the same map, also under inference mode (as `wsol evaluate` calls predict)
    method.output = "cam"
    with torch.inference_mode():
        maps = method.eval().predict(images, labels).maps
    assert torch.allclose(maps, upsampled(layercam), atol=1e-5)


@pytest.mark.parametrize(("backbone", "width"), [("tiny", 8), ("efficientnet_lite0", 2)])
def test_one_backbone_pass_gives_the_classifier_output(backbone: str, width: int) -> None:
    method = FCAM(2, backbone=backbone, large_feature_map=True, classifier_epochs=1).eval()
    images = torch.randn(2, 3, 32, 32)
    features, head = method._encode(images)
    assert features[-1].shape[-1] == width  # large_feature_map: stride 4 (tiny), 16 (Lite0)
    expected = method.classifier(images)
    assert torch.allclose(head.logits, expected.logits, atol=1e-5)
    assert torch.allclose(head.class_maps, expected.class_maps, atol=1e-5)


def test_no_object_images_are_negative_for_negev_only() -> None:
    labels, has_object = torch.tensor([0, 1, 2]), torch.tensor([True, True, False])
    fcam = build_method("fcam", 3, {"classifier_epochs": 1})
    negev = build_method("negev", 3, {"classifier_epochs": 1, "negative_classes": [0]})
    assert fcam.negatives(labels, has_object).tolist() == [False, False, False]
    assert negev.negatives(labels, has_object).tolist() == [True, False, True]
    assert negev.negatives(labels, None).tolist() == [True, False, False]
