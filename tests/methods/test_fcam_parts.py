"""F-CAM / NEGEV parts: the seeder on constructed CAMs, each loss against hand-computed values, the CRF loss's
gradient (numerical check) and the decoder on ResNet, ``tiny`` and a non-ResNet ``stages`` backbone."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from wsol.methods.crf_loss import CRFConfig, dense_crf_loss
from wsol.methods.fcam import FCAM, negative_evidence, partial_cross_entropy
from wsol.methods.seeding import IGNORE, SeedConfig, erode, otsu_region, sample_seeds
from wsol.models import build_backbone
from wsol.models.decoder import UNetDecoder, probe_stages, select_skips


def _block_cam() -> torch.Tensor:
    """20×20 CAM: 1 on rows/cols 5..14 (100 px), 0 elsewhere."""
    cam = torch.zeros(20, 20)
    cam[5:15, 5:15] = 1.0
    return cam


# ---------------------------------------------------------------------------------------------- seeder
def test_otsu_region_splits_a_two_level_cam() -> None:
    cam = torch.full((8, 8), 0.2)
    cam[2:5, 3:7] = 0.8
    assert torch.equal(otsu_region(cam), cam > 0.5)


def test_threshold_seeds_fall_in_the_eroded_region_and_the_lowest_pixels() -> None:
    config = SeedConfig(fg_samples=5, bg_samples=7, dilation=1, bg_fraction=0.1, erode_kernel=3)
    seeds = sample_seeds(_block_cam()[None], config)[0]
    fg, bg = (seeds == 1).nonzero(), (seeds == 0).nonzero()
    assert len(fg) == 5 and len(bg) == 7 and int((seeds == IGNORE).sum()) == 400 - 12
    # one 3×3 erosion of the 10×10 block leaves rows/cols 6..13
    assert fg.min() >= 6 and fg.max() <= 13
    # the 10 % lowest = the first 40 zero pixels in raster order (stable sort) = rows 0 and 1
    assert int(bg[:, 0].max()) <= 1


def test_dilation_makes_3x3_seeds() -> None:
    config = SeedConfig(fg_samples=1, bg_samples=0, dilation=3, erode_kernel=3)
    seeds = sample_seeds(_block_cam()[None], config)[0]
    fg = (seeds == 1).nonzero()
    assert (
        len(fg) == 9
        and int(fg[:, 0].max() - fg[:, 0].min()) == 2
        and int(fg[:, 1].max() - fg[:, 1].min()) == 2
    )


def test_erosion_that_empties_keeps_the_previous_region() -> None:
    region = torch.zeros(10, 10, dtype=torch.bool)
    region[4:6, 4:6] = True
    assert torch.equal(erode(region, 5, 3), region)
    big = torch.zeros(10, 10, dtype=torch.bool)
    big[1:9, 1:9] = True
    assert int(erode(big, 3, 2).sum()) == 16  # 8×8 -> 6×6 -> 4×4


def test_more_fg_samples_than_region_takes_it_all_and_constant_cam_gives_none() -> None:
    config = SeedConfig(fg_samples=1000, bg_samples=0, dilation=1, erode_kernel=1, erode_iterations=0)
    seeds = sample_seeds(torch.stack([_block_cam(), torch.full((20, 20), 0.3)]), config)
    assert int((seeds[0] == 1).sum()) == 100 and torch.equal(seeds[0] == 1, _block_cam() > 0.5)
    assert bool((seeds[1] == IGNORE).all())


def test_pixels_drawn_as_both_are_dropped() -> None:
    # the probability rule gives every pixel weight > 0 for both draws: drawing all of them marks all twice
    config = SeedConfig(rule="probability", fg_samples=400, bg_samples=400, dilation=1)
    assert bool((sample_seeds(torch.rand(1, 20, 20), config) == IGNORE).all())


def test_probability_seeder_draws_fg_at_the_peak() -> None:
    cam = torch.zeros(1, 20, 20)
    cam[0, 3, 17] = 1.0  # p(peak) = (1 + 1e-6) / (1 + 400e-6) ≈ 0.9996
    config = SeedConfig(rule="probability", fg_samples=1, bg_samples=3, dilation=1)
    seeds = sample_seeds(cam, config)[0]
    assert (seeds == 1).nonzero().tolist() == [[3, 17]]
    assert int((seeds == 0).sum()) == 3


def test_seed_config_rejects_even_kernels() -> None:
    with pytest.raises(ValueError, match="dilation"):
        SeedConfig(dilation=2)


# ---------------------------------------------------------------------------------------------- losses
def test_partial_cross_entropy_by_hand() -> None:
    logits = torch.tensor([[[[0.0, 1.0, 0.0]], [[0.0, 0.0, 2.0]]]])  # (1, 2, 1, 3)
    seeds = torch.tensor([[[1, IGNORE, 0]]])
    expected = (math.log(2.0) + math.log(1.0 + math.e**2)) / 2.0
    assert partial_cross_entropy(logits, seeds).item() == pytest.approx(expected, rel=1e-6)
    assert partial_cross_entropy(logits, torch.full_like(seeds, IGNORE)).item() == 0.0


def test_negative_evidence_by_hand() -> None:
    logits = torch.tensor([[[[0.0, 0.0]], [[0.0, math.log(3.0)]]]])  # bg prob 1/2 and 1/4
    assert negative_evidence(logits).item() == pytest.approx(1.5 * math.log(2.0), rel=1e-6)


def test_dense_crf_loss_by_hand() -> None:
    # two pixels 1 px apart (σ_xy = 1), colours σ_rgb apart: W12 = exp(-(1 + 1) / 2) = 1/e, W11 = W22 = 1
    image = torch.tensor([[[[0.0, 15.0]], [[0.0, 0.0]], [[0.0, 0.0]]]])
    a, b = 0.3, 0.9
    probs = torch.tensor([[[[1 - a, 1 - b]], [[a, b]]]])
    w = math.exp(-1.0)
    expected = -sum(x * x + y * y + 2 * w * x * y for x, y in ((a, b), (1 - a, 1 - b)))
    loss = dense_crf_loss(probs, image, CRFConfig(sigma_rgb=15.0, sigma_xy=1.0))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # the batch mean: two copies give the same value
    assert dense_crf_loss(
        probs.repeat(2, 1, 1, 1), image.repeat(2, 1, 1, 1), CRFConfig(15.0, 1.0)
    ).item() == (pytest.approx(expected, rel=1e-6))


@pytest.mark.parametrize("chunk", [5, 64])
def test_dense_crf_gradient_matches_finite_differences(chunk: int) -> None:
    generator = torch.Generator().manual_seed(0)
    probs = torch.rand(2, 2, 3, 4, dtype=torch.float64, generator=generator).requires_grad_(True)
    images = torch.rand(2, 3, 3, 4, dtype=torch.float64, generator=generator) * 255
    config = CRFConfig(sigma_rgb=60.0, sigma_xy=2.0, chunk=chunk)
    assert torch.autograd.gradcheck(lambda p: dense_crf_loss(p, images, config), (probs,))


def test_size_and_negative_terms_inside_the_decoder_loss() -> None:
    method = FCAM(
        2,
        classifier_epochs=1,
        loss={"seeds": 0.0, "crf": 0.0, "size": 1.0, "negative": 1.0},
        negative_classes=[1],
    )
    segmentation = torch.zeros(2, 2, 2, 2)  # P_fg = 1/2: s_fg = s_bg = 2 per image
    segmentation[1, 1] = math.log(3.0)  # image 1 (negative class): P_bg = 1/4 everywhere
    cams = torch.rand(2, 2, 2)
    negative = method.negatives(torch.tensor([0, 1]), None)
    out = method.decoder_loss(segmentation, cams, torch.zeros(2, 3, 2, 2), negative)
    # t = 1, z = -2 <= -1/t²: ψ = -log 2 per region; both regions, image 0 only, halved
    assert out.terms["size"].item() == pytest.approx(-math.log(2.0), rel=1e-6)
    assert out.terms["negative"].item() == pytest.approx(math.log(4.0), rel=1e-6)
    assert out.total.item() == pytest.approx(math.log(4.0) - math.log(2.0), rel=1e-6)


# ---------------------------------------------------------------------------------------------- decoder
def test_select_skips_keeps_the_deepest_map_of_each_size() -> None:
    shapes = [(16, 48, 48), (16, 24, 24), (16, 24, 24), (24, 12, 12), (32, 12, 12), (64, 12, 12)]
    assert select_skips(shapes) == [2, 0]


class _StridedEncoder(nn.Module):
    """A non-ResNet ``stages`` backbone (5 maps at strides 2..32, like EfficientNet-Lite)."""

    def __init__(self) -> None:
        super().__init__()
        widths = [3, 8, 12, 16, 20, 24]
        self.convs = nn.ModuleList(
            nn.Conv2d(i, o, 3, stride=2, padding=1) for i, o in zip(widths, widths[1:], strict=False)
        )

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for conv in self.convs:
            x = conv(x)
            outputs.append(x)
        return outputs


def test_decoder_gives_full_resolution_maps_on_any_stages_backbone() -> None:
    for encoder, size in (
        (build_backbone("resnet18"), 64),
        (build_backbone("tiny"), 50),
        (_StridedEncoder(), 50),
    ):
        decoder = UNetDecoder(probe_stages(encoder))
        out = decoder(encoder.stages(torch.randn(2, 3, size, size)), (size, size))
        assert out.shape == (2, 2, size, size)
    # ResNet-50: skips layer3, layer2, layer1, stem and the paper's widths
    decoder = UNetDecoder(probe_stages(build_backbone("resnet50")))
    assert decoder.skips == [4, 3, 2, 0]
    assert [block.body[0].in_channels for block in decoder.blocks] == [
        2048 + 1024,
        256 + 512,
        128 + 256,
        64 + 64,
        32,
    ]
    assert [block.body[0].out_channels for block in decoder.blocks] == [256, 128, 64, 32, 16]
