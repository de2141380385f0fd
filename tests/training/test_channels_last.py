"""The engine runs methods and batches channels-last by default (``trainer.channels_last``): applied to the
method's convolution weights and to every transferred batch, and a training step still gives a finite loss
equal to the contiguous (NCHW) one up to float rounding."""

from __future__ import annotations

import torch

from wsol.methods import build_method
from wsol.training.config import load_config, to_plain
from wsol.training.module import WSOLLightningModule


def _batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    return {"image": torch.randn(4, 3, 32, 32, generator=generator), "label": torch.tensor([0, 1, 2, 0])}


def _module(channels_last: bool) -> WSOLLightningModule:
    torch.manual_seed(0)
    config = to_plain(load_config(None, [f"trainer.channels_last={str(channels_last).lower()}"]))
    return WSOLLightningModule(build_method("cam", 3, {"backbone": "tiny", "head": "gap"}), config)


def _conv_weights(module: WSOLLightningModule) -> list[torch.Tensor]:
    return [p for p in module.method.parameters() if p.dim() == 4]


def test_channels_last_is_the_default_and_is_applied() -> None:
    assert load_config(None).trainer.channels_last is True
    module = _module(True)
    weights = _conv_weights(module)
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    assert not all(w.is_contiguous() for w in weights)  # really converted, not 1x1-trivially both
    image = module.on_after_batch_transfer(_batch(), 0)["image"]
    assert image.is_contiguous(memory_format=torch.channels_last) and not image.is_contiguous()


def test_off_keeps_nchw() -> None:
    module = _module(False)
    assert all(w.is_contiguous() for w in _conv_weights(module))
    assert module.on_after_batch_transfer(_batch(), 0)["image"].is_contiguous()


def test_training_step_loss_is_finite_and_equals_nchw_to_rounding() -> None:
    losses = []
    for channels_last in (False, True):
        module = _module(channels_last)
        module.method.train()
        terms = module.method.training_step(
            module.on_after_batch_transfer(_batch(), 0), backward=lambda loss: loss.backward()
        )
        losses.append(terms["loss"])
        grads = [p.grad for p in module.method.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
    assert torch.isfinite(losses[1])
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-6)
