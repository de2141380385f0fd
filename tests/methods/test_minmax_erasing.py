"""Recursive erasing with trust coefficients (seed 000 §3.4, Eq. 12-14, Alg. 1) on constructed batches."""

from __future__ import annotations

import json
import math
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from wsol.methods.erasing import recursive_erasing, trust_coefficients

LN3 = math.log(3.0)


def test_trust_coefficients_constructed_batch() -> None:
    labels = torch.tensor([0, 1, 1, 1])  # sample 1 is misclassified
    logits = torch.tensor([[LN3, 0.0], [LN3, 0.0], [0.0, LN3], [0.0, LN3]])  # p_max = 0.75 for all
    losses = torch.full((4,), -math.log(0.75))
    first = torch.tensor([1.0, 1.0, 0.1, 1.0])  # sample 2's loss went up since step 0
    history = torch.tensor([1.0, 1.0, 1.0, 0.0])  # sample 3 was dropped earlier
    trust, new_history = trust_coefficients(2, logits, labels, losses, first, history, slope=10.0)
    # Only sample 0 is correct, not worse and still trusted: exp(-2/10) * 0.75.
    assert trust.tolist() == pytest.approx([math.exp(-0.2) * 0.75, 0.0, 0.0, 0.0])
    assert new_history.tolist() == [1.0, 0.0, 0.0, 0.0]
    # The reference rule only drops misclassified samples; sample 2 (correct, loss up) stays in the loop.
    trust_ref, history_ref = trust_coefficients(2, logits, labels, losses, first, history, 10.0, "correct")
    assert torch.equal(trust_ref, trust)
    assert history_ref.tolist() == [1.0, 0.0, 1.0, 0.0]


def test_trust_decays_with_depth_and_slope() -> None:
    logits = torch.tensor([[2.0, 0.0]])
    args = (logits, torch.tensor([0]), torch.zeros(1), torch.zeros(1), torch.ones(1))
    p = torch.softmax(logits, 1)[0, 0].item()
    for step, slope in [(0, 10.0), (1, 10.0), (3, 10.0), (3, 1.0)]:
        trust, _ = trust_coefficients(step, *args, slope=slope)
        assert trust.item() == pytest.approx(math.exp(-step / slope) * p)


class ScriptedLocalizer:
    """Returns scripted (logits, mask) per step for the samples it is given; records the images it saw."""

    def __init__(self, script: list[dict[int, tuple[list[float], Tensor]]]) -> None:
        self.script = script
        self.weight = torch.ones((), requires_grad=True)
        self.seen: list[Tensor] = []
        self.step = 0

    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor]:
        self.seen.append(images.clone())
        entries = self.script[self.step]
        self.step += 1
        # The sample id is written in pixel (0, 0, 0) of channel 1 (never erased in this script).
        ids = [int(i) for i in images[:, 1, 0, 0].tolist()]
        logits = torch.stack([torch.tensor(entries[i][0]) for i in ids]) * self.weight
        masks = torch.stack([entries[i][1] for i in ids]).unsqueeze(1)
        return logits, masks


def test_recursive_erasing_constructed_batch() -> None:
    labels = torch.tensor([0, 0, 1])
    images = torch.rand(3, 3, 2, 2) + 1.0
    images[:, 1, 0, 0] = torch.arange(3).float()
    m0 = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    m0b = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    m2 = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    zeros = torch.zeros(2, 2)
    script = [
        # step 0: sample 0 correct p=.75, sample 1 wrong (dropped), sample 2 correct p=.8
        {0: ([LN3, 0.0], m0), 1: ([0.0, LN3], m0), 2: ([0.0, math.log(4.0)], m2)},
        # step 1: sample 0 same loss -> trusted with decay; sample 2 correct but its loss rose -> dropped
        {0: ([LN3, 0.0], m0b), 2: ([0.0, math.log(2.0)], zeros)},
        # step 2: sample 0 now wrong -> no sample left
        {0: ([0.0, LN3], zeros)},
        {},
    ]
    localizer = ScriptedLocalizer(script)
    calls: list[float] = []

    def backward(loss: Tensor) -> None:
        calls.append(loss.item())
        loss.backward()

    result = recursive_erasing(images, labels, localizer, backward, depth=4, slope=10.0)
    assert result.active_per_step == [3, 2, 1]
    expected_mask = torch.zeros(3, 1, 2, 2)
    expected_mask[0, 0] = torch.maximum(0.75 * m0, math.exp(-0.1) * 0.75 * m0b)
    expected_mask[2, 0] = 0.8 * m2
    assert torch.allclose(result.accumulated_mask, expected_mask)
    # Erasing compounds on the already-erased image: X^2 = X^1 (1 - R*^1) = X (1 - R*^0)(1 - R*^1).
    r0 = 0.75 * m0
    x1 = images[0] * (1 - r0)
    assert torch.allclose(localizer.seen[1][0], x1)
    assert torch.allclose(localizer.seen[2][0], x1 * (1 - expected_mask[0, 0]))
    # Each step back-propagates sum of its per-sample CE over the *full* batch size.
    ce = [-math.log(0.75), -math.log(0.25), -math.log(0.8)]
    assert calls[0] == pytest.approx(sum(ce) / 3)
    assert calls[1] == pytest.approx((-math.log(0.75) - math.log(2 / 3)) / 3)
    assert calls[2] == pytest.approx(-math.log(0.25) / 3)
    # Accumulated gradient at the localizer parameter = sum over steps (no zeroing in between).
    weight = torch.ones((), requires_grad=True)
    scripted = [
        ([[LN3, 0.0], [0.0, LN3], [0.0, math.log(4.0)]], [0, 0, 1]),
        ([[LN3, 0.0], [0.0, math.log(2.0)]], [0, 1]),
        ([[0.0, LN3]], [0]),
    ]
    replay = sum(
        torch.nn.functional.cross_entropy(torch.tensor(z) * weight, torch.tensor(y), reduction="sum") / 3
        for z, y in scripted
    )
    assert isinstance(replay, Tensor)
    replay.backward()
    assert localizer.weight.grad is not None and weight.grad is not None
    assert localizer.weight.grad.item() == pytest.approx(weight.grad.item(), rel=1e-6)
    assert torch.equal(result.first_logits.argmax(1), torch.tensor([0, 1, 1]))


def test_full_batch_reference_procedure_gives_the_same_mask() -> None:
    labels = torch.tensor([0, 1])
    images = torch.rand(2, 3, 2, 2) + 1.0
    images[:, 1, 0, 0] = torch.arange(2).float()
    mask = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    good, bad = ([LN3, 0.0], mask), ([LN3, 0.0], mask)  # sample 1 (label 1) is always wrong
    script = [{0: good, 1: bad}] * 3

    def run(shrink: bool) -> tuple[list[int], torch.Tensor, list[float]]:
        calls: list[float] = []
        result = recursive_erasing(
            images,
            labels,
            ScriptedLocalizer(script),
            lambda loss: calls.append(loss.item()),
            3,
            shrink_batch=shrink,
        )
        return result.active_per_step, result.accumulated_mask, calls

    steps_small, mask_small, calls_small = run(True)
    steps_full, mask_full, calls_full = run(False)
    assert steps_small == [2, 1, 1] and steps_full == [2, 2, 2]
    assert torch.equal(mask_small, mask_full)
    # The reference keeps adding the dropped sample's CE (-ln 0.25) / B at every step.
    assert calls_full[1] == pytest.approx(calls_small[1] - math.log(0.25) / 2)


def test_reference_history_keeps_correct_samples_and_stops_at_depth() -> None:
    labels = torch.tensor([1])
    images = torch.ones(1, 3, 2, 2)
    images[:, 1, 0, 0] = 0.0
    mask = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    step = ([0.0, LN3], mask)
    worse = ([0.0, math.log(2.0)], mask)
    script = [{0: step}, {0: worse}, {0: step}]
    localizer = ScriptedLocalizer(script)
    result = recursive_erasing(
        images, labels, localizer, lambda loss: loss.backward(), depth=3, history_rule="correct"
    )
    assert result.active_per_step == [1, 1, 1]  # stops at u = 3, not because of trust
    # Step 1 (loss rose) is not trusted: the image is not erased again before step 2.
    assert torch.equal(localizer.seen[2], localizer.seen[1])
    expected = torch.maximum(0.75 * mask, math.exp(-0.2) * 0.75 * mask)
    assert torch.allclose(result.accumulated_mask[0, 0], expected)


class _TinyLocalizer(nn.Module):
    """Conv localizer whose class is fixed by a large bias (predictions stay correct while erasing)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 3, padding=1))
        self.bias = nn.Parameter(torch.tensor([20.0, 0.0]))

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        maps = self.conv(images)
        logits = 0.01 * maps.mean(dim=(2, 3)) + self.bias
        mask = torch.sigmoid(maps[:, :1] - maps[:, :1].mean())
        return logits, mask


@contextmanager
def _track_saved_tensor_bytes() -> Iterator[dict[str, int]]:
    """Peak bytes of tensors saved for backward that are alive at the same time (activation memory)."""
    stats = {"live": 0, "peak": 0}

    class _Holder:
        def __init__(self, tensor: Tensor) -> None:
            # Detached: holding a saved *output* with its grad_fn would make a reference cycle (a leak).
            self.tensor = tensor.detach()

    def pack(tensor: Tensor) -> _Holder:
        holder = _Holder(tensor)
        size = tensor.numel() * tensor.element_size()
        stats["live"] += size
        stats["peak"] = max(stats["peak"], stats["live"])
        weakref.finalize(holder, lambda: stats.__setitem__("live", stats["live"] - size))
        return holder

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda holder: holder.tensor):
        yield stats


def _peak_bytes(depth: int, per_step_backward: bool) -> tuple[int, int]:
    torch.manual_seed(0)
    model = _TinyLocalizer()
    images = torch.rand(4, 3, 16, 16)
    labels = torch.zeros(4, dtype=torch.long)
    pending: list[Tensor] = []

    def backward(loss: Tensor) -> None:
        if per_step_backward:
            loss.backward()
        else:
            pending.append(loss)

    with _track_saved_tensor_bytes() as stats:
        result = recursive_erasing(images, labels, model, backward, depth=depth, history_rule="correct")
        if pending:
            torch.stack(pending).sum().backward()
    return stats["peak"], len(result.active_per_step)


def test_gradient_accumulation_keeps_peak_memory_constant_in_depth() -> None:
    peak_1, steps_1 = _peak_bytes(1, per_step_backward=True)
    peak_4, steps_4 = _peak_bytes(4, per_step_backward=True)
    assert (steps_1, steps_4) == (1, 4)
    assert peak_4 == peak_1
    # Control: keeping every step's graph for one final backward grows with the depth (so the probe works).
    naive_4, _ = _peak_bytes(4, per_step_backward=False)
    assert naive_4 >= 3.5 * peak_1


def test_accumulated_gradient_equals_sum_of_step_gradients() -> None:
    torch.manual_seed(0)
    model = _TinyLocalizer()
    images = torch.rand(3, 3, 8, 8)
    labels = torch.zeros(3, dtype=torch.long)
    seen: list[Tensor] = []

    def localize(x: Tensor) -> tuple[Tensor, Tensor]:
        seen.append(x.clone())
        return model(x)

    recursive_erasing(images, labels, localize, lambda loss: loss.backward(), depth=3, history_rule="correct")
    accumulated = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    replay = sum(torch.nn.functional.cross_entropy(model(x)[0], labels, reduction="sum") / 3 for x in seen)
    assert isinstance(replay, Tensor)
    replay.backward()
    for got, param in zip(accumulated, model.parameters(), strict=True):
        assert param.grad is not None and torch.allclose(got, param.grad, atol=1e-6)


def test_bad_arguments() -> None:
    images, labels = torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="depth u must be >= 1"):
        recursive_erasing(images, labels, _TinyLocalizer(), lambda loss: None, depth=0)
    with pytest.raises(ValueError, match="labels"):
        recursive_erasing(images, labels[:1], _TinyLocalizer(), lambda loss: None, depth=1)
    with pytest.raises(ValueError, match="slope"):
        trust_coefficients(
            0, torch.zeros(1, 2), labels[:1], torch.zeros(1), torch.zeros(1), torch.ones(1), 0.0
        )


def _distributed_worker(rank: int, folder: str) -> None:
    init = f"file://{folder}/init"
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        torch.manual_seed(rank)
        model = _TinyLocalizer()
        # Rank 0's only sample is misclassified at step 0 (dropped); rank 1's stays correct for all 3 steps.
        labels = torch.tensor([1 - rank])
        calls: list[float] = []

        def backward(loss: Tensor) -> None:
            calls.append(loss.item())
            loss.backward()

        result = recursive_erasing(
            torch.rand(1, 3, 8, 8), labels, model, backward, depth=3, history_rule="correct"
        )
        with open(f"{folder}/rank{rank}.json", "w") as handle:
            json.dump([calls, result.active_per_step], handle)
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_distributed_processes_call_backward_equally_often(tmp_path: Path) -> None:
    torch.multiprocessing.spawn(_distributed_worker, args=(str(tmp_path),), nprocs=2, join=True)
    calls_0, steps_0 = json.loads((tmp_path / "rank0.json").read_text())
    calls_1, steps_1 = json.loads((tmp_path / "rank1.json").read_text())
    assert steps_0 == [1] and steps_1 == [1, 1, 1]
    assert len(calls_0) == len(calls_1) == 3
    assert calls_0[1:] == [0.0, 0.0]  # zero-weight passes of the process that had nothing left to erase
