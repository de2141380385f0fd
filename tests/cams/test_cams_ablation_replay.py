"""Ablation-CAM runs only the part of the network after the target layer, and its maps stay those of the
literal method: zero channel k of the target layer's output and rerun the whole model on the image alone."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from wsol.cams import build_extractor


class Block(nn.Module):
    """A residual block written like torchvision's: an in-place ReLU module called twice."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.conv2(out) + x)


class Stash(nn.Module):
    """Keeps its input in a dict the model reads later: state that a replay of the module leaves stale."""

    def __init__(self, store: dict[str, Tensor]) -> None:
        super().__init__()
        self.store = store

    def forward(self, x: Tensor) -> Tensor:
        self.store["saved"] = x
        return x


class TinyResNet(nn.Module):
    """Stem → block → downsampling → two blocks → head that also reads the early features (a skip across
    the deeper target layers). ``stateful``: the skip goes through ``Stash``'s dict instead of a variable."""

    def __init__(self, stateful: bool = False) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(inplace=True))
        self.layer1 = Block(6)
        self.store: dict[str, Tensor] = {}
        self.stash = Stash(self.store)
        self.down = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.layer2 = nn.Sequential(Block(8), Block(8))
        self.fc = nn.Linear(14, 5)
        self.stateful = stateful

    def forward(self, x: Tensor) -> Tensor:
        early = self.stash(self.layer1(self.stem(x)))
        late = self.layer2(self.down(early))
        skip = self.store["saved"] if self.stateful else early
        return self.fc(torch.cat([late.mean((2, 3)), skip.mean((2, 3))], 1))


def _model(stateful: bool = False) -> TinyResNet:
    torch.manual_seed(0)
    model = TinyResNet(stateful).double()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):  # non-trivial eval statistics
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


@torch.no_grad()
def _literal_ablation(model: nn.Module, layer: nn.Module, x: Tensor, targets: list[int]) -> Tensor:
    """Σ_k (y_c − y_c^k) / y_c · A_k: one whole-model forward per image and channel, zeroed by a hook."""
    store: dict[str, Tensor] = {}
    handle = layer.register_forward_hook(lambda _m, _a, out: store.__setitem__("a", out.clone()))
    logits = model(x)
    handle.remove()
    activations = store["a"]
    maps = torch.zeros(x.shape[0], *activations.shape[2:], dtype=x.dtype)
    for b, c in enumerate(targets):
        for k in range(activations.shape[1]):

            def zero(_m: nn.Module, _a: object, out: Tensor, k: int = k) -> Tensor:
                out = out.clone()
                out[:, k] = 0
                return out

            handle = layer.register_forward_hook(zero)
            ablated = model(x[b : b + 1])[0, c]
            handle.remove()
            maps[b] += (logits[b, c] - ablated) / logits[b, c] * activations[b, k]
    return maps


def _count_calls(module: nn.Module) -> list[int]:
    calls: list[int] = []
    module.register_forward_hook(lambda *_: calls.append(1))
    return calls


# layer2.1.conv2: its block's in-place ReLU writes into the replayed output of bn1 (replayed as copies), and
# the block's input comes back after the target (skip connection); layer2 and deeper: the head reads layer1.
@pytest.mark.parametrize("layer", ["layer2", "layer2.1", "layer2.1.conv2", "down", "layer1.conv1"])
def test_maps_equal_the_literal_method_and_the_layers_before_the_target_run_once(layer: str) -> None:
    model = _model()
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    targets = [0, 3, 4]
    expected = _literal_ablation(model, model.get_submodule(layer), x, targets)
    stem_calls = _count_calls(model.stem)
    modules = list(model.modules())
    with build_extractor("ablationcam", model, layer, batch_size=3) as extractor:
        maps = extractor(x, targets, relu=False, normalize=None)
    torch.testing.assert_close(maps, expected)
    assert len(stem_calls) == 1  # the first forward only: every ablated forward replays the stem
    assert list(model.modules()) == modules  # the stand-ins are gone


# Replaying Stash leaves the first forward's features of the whole batch in the dict: with 3 images the
# replayed forward fails (3 rows against 2), with 2 it gives other numbers; both are caught.
@pytest.mark.parametrize("batch", [2, 3])
def test_a_replay_that_changes_the_outputs_is_refused_and_the_prefix_recomputed(batch: int) -> None:
    model = _model(stateful=True)
    x = torch.randn(batch, 3, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    targets = [1, 2, 0][:batch]
    expected = _literal_ablation(model, model.layer2, x, targets)
    stem_calls = _count_calls(model.stem)
    with build_extractor("ablationcam", model, "layer2", batch_size=4) as extractor:
        maps = extractor(x, targets, relu=False, normalize=None)
    torch.testing.assert_close(maps, expected)
    assert len(stem_calls) > 3  # recomputed for the ablated forwards
