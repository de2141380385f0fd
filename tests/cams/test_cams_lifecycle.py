"""Hooks never outlive a call, memory does not grow over 1,000 extractions, and maps can carry gradients."""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
from torch import Tensor, nn

from wsol.cams import CAM_METHODS, build_extractor

FAST_OPTIONS = {
    "sscam": {"num_samples": 2},
    "iscam": {"num_samples": 2},
    "smoothgradcampp": {"num_samples": 2},
}


def _live_tensors() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj) in (Tensor, nn.Parameter))


def test_thousand_extractions_leave_no_hook_and_no_memory(hook_count) -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    )
    x = torch.randn(2, 3, 6, 6)
    names = sorted(CAM_METHODS)
    extractors = [build_extractor(name, model, "1", **FAST_OPTIONS.get(name, {})) for name in names]
    for extractor in extractors:  # warm-up: lazily created state exists before counting
        extractor(x, upsample_to="input")
    before = _live_tensors()
    for step in range(1000):
        extractor = extractors[step % len(extractors)]
        with extractor:
            extractor(x, upsample_to="input")
        assert hook_count(model) == 0
    assert _live_tensors() <= before
    assert all(extractor.last_logits is None for extractor in extractors)  # released by the context manager


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("differentiable", [False, True])
def test_cuda_memory_does_not_grow(differentiable: bool) -> None:
    """Higher-order graphs were a CUDA leak in pytorch-grad-cam (#575): allocated bytes must come back."""
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)
    )
    model = model.cuda()
    x = torch.randn(4, 3, 16, 16, device="cuda")
    with build_extractor("gradcampp", model, "1") as extractor:
        extractor(x, differentiable=differentiable).sum()
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        for _ in range(200):
            maps = extractor(x, differentiable=differentiable)
            if differentiable:
                maps.sum().backward()
            del maps
        model.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
    assert torch.cuda.memory_allocated() <= before


def test_hooks_are_removed_when_a_call_fails(hook_count) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
    with build_extractor("gradcam", model, "0") as extractor, pytest.raises(RuntimeError):
        extractor(torch.randn(1, 3, 5, 5))  # wrong size for the linear layer: fails inside the forward
    assert hook_count(model) == 0


def test_extractor_is_collected_without_cycles_through_the_model() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    extractor = build_extractor("gradcam", model, "0")
    extractor(torch.randn(1, 3, 4, 4))
    ref = weakref.ref(extractor)
    del extractor
    assert ref() is None  # freed by reference counting alone: nothing on the model points back to it


class SmoothNet(nn.Module):
    """Smooth activations so that finite differences of the CAM are well defined."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 5, 3, padding=1))
        self.act = nn.Softplus()
        self.fc = nn.Linear(5, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.act(self.body(x)).mean((2, 3)))


@pytest.mark.parametrize("method", ["cam", "gradcam", "gradcampp", "xgradcam", "scorecam", "ablationcam"])
def test_differentiable_maps_have_correct_gradients(method: str) -> None:
    torch.manual_seed(0)
    model = SmoothNet().double().eval()
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    extractor = build_extractor(method, model, "body")

    def maps_of(inputs: Tensor) -> Tensor:
        return extractor(inputs, [0, 2], relu=False, normalize=None, differentiable=True)

    assert torch.autograd.gradcheck(maps_of, (x,), eps=1e-6, atol=1e-5)


def test_differentiable_flag_controls_the_graph_and_param_grads() -> None:
    torch.manual_seed(0)
    model = SmoothNet().eval()
    x = torch.randn(2, 3, 4, 4)
    with build_extractor("gradcam", model, "body") as extractor:
        detached = extractor(x, 0)
        assert not detached.requires_grad and not extractor.last_logits.requires_grad
        assert all(p.grad is None for p in model.parameters())
        maps = extractor(x, 0, differentiable=True, upsample_to="input")
        loss = maps.mean() + extractor.last_logits.logsumexp(1).mean()  # a CAM term inside a training loss
        loss.backward()
    assert model.body[0].weight.grad is not None and model.body[0].weight.grad.abs().sum() > 0
