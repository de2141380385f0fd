"""Each method against its formula evaluated independently on a linear head over fixed features.

Model: logits = W · mean_ij A(i, j) + b, where the input x *is* the target layer's activation A (B, K, h, w).
Then S_c is linear in A and g_k(i, j) = ∂S_c/∂A_k(i, j) = W[c, k] / (h·w) everywhere, so every method reduces
to a closed form written below with explicit per-channel loops (no code shared with the library).
Raw maps (``relu=False, normalize=None``) are compared so that scale and sign are checked too.

Public references: pytorch-grad-cam and torch-cam implement the same weights for Grad-CAM, Grad-CAM++,
XGrad-CAM, LayerCAM, Score-CAM and Ablation-CAM; their *outputs* differ from our raw maps only by their
post-processing (pytorch-grad-cam: ReLU, cv2 bilinear resize, min-max with eps 1e-7; torch-cam: min-max with
eps 1e-8 at feature resolution; Grad-CAM++ in pytorch-grad-cam adds eps 1e-6 to α's denominator, and torch-cam
v0.2 left α = g², a bug we do not reproduce). Score-CAM's weight is compared with the authors' choice
(softmax over classes); pytorch-grad-cam's softmax over channels is our ``channel_softmax``, tested below.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from wsol.cams import build_extractor

RAW = {"relu": False, "normalize": None}


def _inputs(batch: int = 2, channels: int = 4, size: int = 3, seed: int = 1) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, size, size, generator=generator, dtype=torch.float64)


def _weighted_sum(weights: list[list[float]], x: Tensor) -> Tensor:
    """Σ_k w[b][k] A_k, looping over samples and channels."""
    out = torch.zeros(x.shape[0], x.shape[2], x.shape[3], dtype=x.dtype)
    for b in range(x.shape[0]):
        for k in range(x.shape[1]):
            out[b] += weights[b][k] * x[b, k]
    return out


@torch.no_grad()
def _logits(model, x: Tensor) -> Tensor:
    return x.mean((2, 3)) @ model.fc.weight.T + model.fc.bias


def _minmax(channel: Tensor) -> Tensor:
    return (channel - channel.min()) / (channel.max() - channel.min())


TARGETS = [2, 0]


def _hand_weights(method: str, model, x: Tensor) -> list[list[float]]:
    W = model.fc.weight.detach()
    n = x.shape[2] * x.shape[3]
    logits = _logits(model, x).detach()
    weights = []
    for b, c in enumerate(TARGETS):
        row = []
        for k in range(x.shape[1]):
            g = float(W[c, k]) / n
            total = float(x[b, k].sum())
            if method == "cam":
                row.append(float(W[c, k]))
            elif method == "recombined_cam":
                row.append(abs(float(W[c, k])))
            elif method in ("gradcam", "xgradcam"):
                # XGrad-CAM: Σ g A / (Σ A + 1e-7) with constant g.
                row.append(g if method == "gradcam" else g * total / (total + 1e-7))
            elif method == "gradcampp":
                alpha = g**2 / (2 * g**2 + total * g**3)
                row.append(n * alpha * max(g, 0.0))
            elif method == "ablationcam":
                ablated = float(logits[b, c]) - float(W[c, k]) * float(x[b, k].mean())
                row.append((float(logits[b, c]) - ablated) / float(logits[b, c]))
            elif method in ("scorecam", "iscam"):
                scales = [1.0] if method == "scorecam" else [i / 10 for i in range(1, 11)]
                probs = [
                    float(torch.softmax(_logits(model, (x[b] * _minmax(x[b, k]) * s)[None]), 1)[0, c])
                    for s in scales
                ]
                row.append(sum(probs) / len(probs))
            else:
                raise AssertionError(method)
        weights.append(row)
    return weights


@pytest.mark.parametrize(
    "method",
    ["cam", "recombined_cam", "gradcam", "gradcampp", "xgradcam", "ablationcam", "scorecam", "iscam"],
)
def test_channel_weighted_methods_match_hand_formula(method: str, fixed_head) -> None:
    model = fixed_head()
    x = _inputs()
    with build_extractor(method, model, "features") as extractor:
        maps = extractor(x, TARGETS, **RAW)
    expected = _weighted_sum(_hand_weights(method, model, x), x)
    torch.testing.assert_close(maps, expected, rtol=1e-9, atol=1e-12)


def test_layercam_is_positive_gradient_times_activation(fixed_head) -> None:
    model = fixed_head()
    x = _inputs()
    with build_extractor("layercam", model, "features") as extractor:
        maps = extractor(x, TARGETS, **RAW)
    n = x.shape[2] * x.shape[3]
    weights = [
        [max(float(model.fc.weight[c, k].detach()) / n, 0.0) for k in range(x.shape[1])] for c in TARGETS
    ]
    torch.testing.assert_close(maps, _weighted_sum(weights, x))


def test_sscam_matches_explicit_noise(fixed_head) -> None:
    """SS-CAM: w_k = mean_s softmax(f(x ∘ (H_k + σ ε_s)))_c, ε drawn as documented (seed, (N, 1, H, W))."""
    model = fixed_head()
    x = _inputs()
    samples, std = 5, 0.5
    with build_extractor("sscam", model, "features", num_samples=samples, std=std, seed=3) as extractor:
        maps = extractor(x, TARGETS, **RAW)
    noise = std * torch.randn((samples, 1, 3, 3), generator=torch.Generator().manual_seed(3), dtype=x.dtype)
    weights = []
    for b, c in enumerate(TARGETS):
        row = []
        for k in range(x.shape[1]):
            mask = _minmax(x[b, k])
            probs = [
                float(torch.softmax(_logits(model, (x[b] * (mask + noise[s]))[None]), 1)[0, c])
                for s in range(samples)
            ]
            row.append(sum(probs) / samples)
        weights.append(row)
    torch.testing.assert_close(maps, _weighted_sum(weights, x))


def test_scorecam_channel_softmax_weighting(fixed_head) -> None:
    """``channel_softmax``: w = softmax over channels of S_c(x ∘ H_k) (pytorch-grad-cam; paper Eq. 8)."""
    model = fixed_head()
    x = _inputs()
    with build_extractor(
        "scorecam", model, "features", weighting="channel_softmax", batch_size=3
    ) as extractor:
        maps = extractor(x, TARGETS, **RAW)
    weights = []
    for b, c in enumerate(TARGETS):
        scores = torch.tensor(
            [float(_logits(model, (x[b] * _minmax(x[b, k]))[None])[0, c]) for k in range(4)]
        )
        weights.append(torch.softmax(scores, 0).tolist())
    torch.testing.assert_close(maps, _weighted_sum(weights, x))


def test_smooth_gradcampp_equals_gradcampp_on_a_linear_head(fixed_head) -> None:
    """With S_c linear in A the gradient does not depend on the noise: Smooth Grad-CAM++ = Grad-CAM++."""
    model = fixed_head()
    x = _inputs()
    with build_extractor("gradcampp", model, "features") as plain:
        expected = plain(x, TARGETS, **RAW)
    with build_extractor("smoothgradcampp", model, "features", num_samples=3, std=0.7) as smooth:
        torch.testing.assert_close(smooth(x, TARGETS, **RAW), expected)


def test_smooth_gradcampp_averages_gradient_powers(fixed_head) -> None:
    """Squared features: g_s = 2 W[c,k] (A + σ ε_s) / n; α, w from the averaged powers, A the clean input."""
    model = fixed_head(power=2)
    x = _inputs()
    samples, std = 3, 0.4
    with build_extractor("smoothgradcampp", model, "features", num_samples=samples, std=std, seed=5) as ex:
        maps = ex(x, TARGETS, **RAW)
    noise = std * torch.randn(
        (samples, *x.shape[1:]), generator=torch.Generator().manual_seed(5), dtype=x.dtype
    )
    n = x.shape[2] * x.shape[3]
    weights = []
    for b, c in enumerate(TARGETS):
        row = []
        for k in range(x.shape[1]):
            grads = [
                2 * float(model.fc.weight[c, k].detach()) * (x[b, k] + noise[s, k]) / n
                for s in range(samples)
            ]
            m1, m2, m3 = (sum(g**p for g in grads) / samples for p in (1, 2, 3))
            denominator = 2 * m2 + float(x[b, k].sum()) * m3
            alpha = torch.where(denominator != 0, m2 / denominator, torch.zeros_like(m2))
            row.append(float((alpha * m1.clamp_min(0)).sum()))
        weights.append(row)
    torch.testing.assert_close(maps, _weighted_sum(weights, x))


def test_recombined_cam_keeps_negatively_weighted_evidence(fixed_head) -> None:
    """Thesis Eq. 21: a channel with w < 0 lowers plain CAM but raises the recombined map by |w| A."""
    model = fixed_head(channels=2, classes=1)
    with torch.no_grad():
        model.fc.weight.copy_(torch.tensor([[1.0, -0.5]], dtype=torch.float64))
    x = torch.zeros(1, 2, 1, 2, dtype=torch.float64)
    x[0, 0, 0, 0] = 2.0  # positive channel fires left
    x[0, 1, 0, 1] = 4.0  # negative channel fires right
    with (
        build_extractor("cam", model, "features") as cam,
        build_extractor("recombined_cam", model, "features") as rc,
    ):
        plain = cam(x, 0, **RAW)
        recombined = rc(x, 0, **RAW)
    torch.testing.assert_close(plain, torch.tensor([[[2.0, -2.0]]], dtype=torch.float64))
    torch.testing.assert_close(recombined, torch.tensor([[[2.0, 2.0]]], dtype=torch.float64))


def test_gradcampp_alpha_by_hand(fixed_head) -> None:
    """One channel of 1x2, W = 2: g = W / n = 1, Σ A = 3 ⇒ α = 1 / (2 + 3); w = n α ReLU(g) = 0.4."""
    model = fixed_head(channels=1, classes=1)
    with torch.no_grad():
        model.fc.weight.fill_(2.0)
    x = torch.tensor([[[[1.0, 2.0]]]], dtype=torch.float64)
    with build_extractor("gradcampp", model, "features") as extractor:
        maps = extractor(x, 0, **RAW)
    torch.testing.assert_close(maps, torch.tensor([[[0.4, 0.8]]], dtype=torch.float64))
