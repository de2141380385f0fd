"""Recursive erasing with trust coefficients (Belharbi et al., arXiv 1907.12934 §3.4, Alg. 1).

Training-time only. At each step t the localizer M sees the image erased so far, X^t; its classification loss
is back-propagated at once (gradients accumulate at M, so the graph of one step is freed before the next and
peak memory does not grow with the depth u), and its mask M⁺ is merged into the accumulated mask R⁺* weighted
by the sample's trust Ψ(t, i) (Eq. 12–14, as in the authors' public code):

    Ψ(t, i) = exp(−t/σ_e) · 1[ŷ_i^t = y_i] · 1[ℓ_i^t ≤ ℓ_i^0] · p̂ˢ(ŷ_i^t | X_i^t) · h_i^{t−1}
    R⁺*_i  ← max(R⁺*_i, Ψ(t, i) · M⁺_i^t)            (pixel-wise)
    X_i^{t+1} = X_i^t ⊙ (1 − R⁺*_i)                   (trusted samples only; untrusted ones are kept)

Beyond the paper, each further step runs only on the samples whose history h is still non-zero (the batch
shrinks), which removes the cost of forwarding samples that can no longer contribute to R⁺*.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.distributed as dist
from torch import Tensor

from wsol.methods.losses import cross_entropy
from wsol.methods.options import require, require_choice, require_integer, require_number

__all__ = ["ErasingOptions", "ErasingResult", "HistoryRule", "recursive_erasing", "trust_coefficients"]

HistoryRule = Literal["trust", "correct"]
"""How the history h is updated. ``"trust"`` (paper §3.4: "once a sample is assigned a zero trust coefficient,
it is maintained zero all along the erasing"): h^t = h^{t−1} · 1[Ψ(t) > 0]. ``"correct"`` (the reference
code): h^t = min(h^{t−1}, 1[ŷ^t = y]); a sample whose loss rose is not erased at that step but stays in."""


@dataclass(frozen=True)
class ErasingOptions:
    """Recursive erasing of a training method (YAML ``method.options.erasing``).

    ``depth`` u (0 = no erasing), ``slope`` σ_e, from epoch ``start_epoch``; ``history`` (:data:`HistoryRule`)
    and ``shrink_batch`` as in :func:`recursive_erasing`. ``exclude_untrusted`` leaves the samples whose
    accumulated mask is 0 (the localizer misclassified them at step 0) out of the classifier's losses.
    """

    depth: int = 0
    slope: float = 10.0
    start_epoch: int = 1
    history: HistoryRule = "trust"
    shrink_batch: bool = True
    exclude_untrusted: bool = False

    def __post_init__(self) -> None:
        require_integer("depth", self.depth, 0)
        require_number("slope", self.slope, low=0.0, open_low=True)
        require_integer("start_epoch", self.start_epoch, 0)
        require_choice("history", self.history, ("trust", "correct"))
        require(isinstance(self.shrink_batch, bool), "shrink_batch", "true or false", self.shrink_batch)
        untrusted = self.exclude_untrusted
        require(isinstance(untrusted, bool), "exclude_untrusted", "true or false", untrusted)


Localize = Callable[[Tensor], tuple[Tensor, Tensor]]
"""Localizer forward: images (b, 3, H, W) -> (scores (b, K) with grad, pseudo-binary mask M⁺ (b, 1, H, W))."""


def trust_coefficients(
    step: int,
    logits: Tensor,
    labels: Tensor,
    losses: Tensor,
    first_losses: Tensor,
    history: Tensor,
    slope: float = 10.0,
    history_rule: HistoryRule = "trust",
) -> tuple[Tensor, Tensor]:
    """Trust Ψ(t, i) of each sample's current mask and the updated history h^t (arXiv 1907.12934 Eq. 13–14).

    ``logits`` are the localizer scores on X^t (b, K), ``losses`` its per-sample cross-entropy ℓ^t (b,),
    ``first_losses`` ℓ^0 on the unerased images, ``history`` h^{t−1} in {0, 1} (b,). Returns ``(trust,
    history)``, both float (b,). ``slope`` is σ_e in the decay exp(−t/σ_e).
    """
    if slope <= 0:
        raise ValueError(f"erasing slope sigma_e must be > 0, got {slope}")
    if history_rule not in ("trust", "correct"):
        raise ValueError(f"history_rule must be 'trust' or 'correct', got {history_rule!r}")
    probabilities = torch.softmax(logits.detach().float(), dim=1)
    top_probability, prediction = probabilities.max(dim=1)
    correct = (prediction == labels).float()
    not_worse = (losses.detach() <= first_losses.detach()).float()
    if history_rule == "correct":
        history = torch.minimum(history, correct)
    trust = math.exp(-step / slope) * correct * not_worse * top_probability * history
    if history_rule == "trust":
        history = history * (trust > 0).float()
    return trust, history


def _on_any_process(flag: bool, device: torch.device) -> bool:
    """``flag`` or-ed over the processes of the default distributed group (``flag`` when not distributed)."""
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return flag
    value = torch.tensor(float(flag), device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


@dataclass
class ErasingResult:
    """Outcome of one recursion on a mini-batch (tensors detached except the two ``first_step_*``)."""

    accumulated_mask: Tensor
    """R⁺* (B, 1, H, W) in [0, 1]."""
    localizer_loss: Tensor
    """Mean of the per-step batch-mean localizer CE (over samples processed), for logging."""
    first_logits: Tensor
    """Localizer scores on the unerased images (B, K)."""
    active_per_step: list[int] = field(default_factory=list)
    """How many samples each step forwarded (its length is the number of steps run)."""
    first_step_loss: Tensor | None = None
    """With ``keep_first_graph``: step 0's weighted localizer loss, not yet back-propagated (with grad)."""
    first_step_mask: Tensor | None = None
    """With ``keep_first_graph``: Ψ(0, i) · M⁺_i on the unerased images (B, 1, H, W), with grad."""


def recursive_erasing(  # noqa: PLR0913  Alg. 1's inputs: the batch, the two callables and ErasingOptions' fields
    images: Tensor,
    labels: Tensor,
    localize: Localize,
    backward: Callable[[Tensor], None],
    depth: int,
    slope: float = 10.0,
    loss_weight: float = 1.0,
    history_rule: HistoryRule = "trust",
    shrink_batch: bool = True,
    localize_erased: Localize | None = None,
    keep_first_graph: bool = False,
) -> ErasingResult:
    """Run Alg. 1's inner loop (arXiv 1907.12934 §3.4 / App. A.1) on one mini-batch; accumulate M's gradients.

    At most ``depth`` (u) localizer passes: the first on ``images``, the next ones on the erased images; the
    loop stops early when no sample has a non-zero history. Each pass calls ``backward`` once on
    ``loss_weight · Σ_i ℓ_i^t / B`` (B = full batch size, so a sample's gradient weight matches the reference
    batch mean whether or not others dropped out). ``shrink_batch=False`` is the reference procedure: every
    step forwards the whole batch (samples with zero history get zero trust but still add their CE). The
    caller then classifies X ⊙ R⁺* and X ⊙ (1 − R⁺*). ``localize_erased``, if given, replaces ``localize`` for
    the erased images (steps t ≥ 1), e.g. to keep them out of BatchNorm's running statistics.
    ``keep_first_graph`` skips step 0's ``backward`` and returns its loss and trust-weighted mask with their
    graph, so that the caller can back-propagate the classifier's error through M⁺ (two graphs alive at most,
    still independent of u).

    Distributed: the stop decision is or-ed over the processes, and a process with no sample left runs a
    zero-weight pass, so that every process calls ``backward`` the same number of times (DDP all-reduces on
    each backward).
    """
    _check_inputs(images, labels, depth)
    state = _Recursion.start(images, labels, keep_first_graph)
    for step in range(depth):
        local = bool((state.history > 0).any())
        if not _on_any_process(local, images.device):
            break
        if not local:
            # Another process still erases. Under DDP every backward is a collective, so take part with a
            # zero-weight pass: all processes then call ``backward`` equally often and nobody waits forever.
            backward(0.0 * localize(state.erased)[0].sum())
            continue
        forward = localize if step == 0 or localize_erased is None else localize_erased
        active, logits, losses, mask_pos = state.forward(step, forward, backward, loss_weight, shrink_batch)
        with torch.no_grad():
            state.merge(step, active, logits, losses, mask_pos, slope, history_rule)
    return state.result()


def _check_inputs(images: Tensor, labels: Tensor, depth: int) -> None:
    if depth < 1:
        raise ValueError(f"erasing depth u must be >= 1 for the recursion, got {depth}")
    if images.ndim != 4 or labels.shape != images.shape[:1]:
        raise ValueError(
            "expected images (B, 3, H, W) and labels (B,), "
            f"got {tuple(images.shape)} and {tuple(labels.shape)}"
        )
    if images.shape[0] == 0:
        raise ValueError("recursive erasing needs a non-empty batch")


@dataclass
class _Recursion:
    """The state of :func:`recursive_erasing` across its steps (one mini-batch)."""

    erased: Tensor
    labels: Tensor
    history: Tensor
    keep_first_graph: bool
    accumulated: Tensor | None = None
    first_losses: Tensor | None = None
    first_logits: Tensor | None = None
    step_losses: list[Tensor] = field(default_factory=list)
    active_per_step: list[int] = field(default_factory=list)
    first_step_loss: Tensor | None = None
    first_step_mask: Tensor | None = None
    first_step_trust: Tensor | None = None

    @classmethod
    def start(cls, images: Tensor, labels: Tensor, keep_first_graph: bool) -> _Recursion:
        history = torch.ones(images.shape[0], device=images.device)
        return cls(images.detach().clone(), labels, history, keep_first_graph)

    def forward(
        self, step: int, localize: Localize, backward: Callable[[Tensor], None], weight: float, shrink: bool
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One localizer pass on the active samples, its loss back-propagated (or kept, step 0 with
        ``keep_first_graph``); returns ``(active indices, logits, per-sample CE, mask M⁺)``, the last two
        detached."""
        everyone = torch.arange(self.erased.shape[0], device=self.erased.device)
        active = everyone[self.history > 0] if shrink else everyone
        logits, mask_pos = localize(self.erased[active])
        losses = cross_entropy(logits, self.labels[active], reduction="none")
        step_loss = weight * losses.sum() / self.erased.shape[0]
        if step == 0 and self.keep_first_graph:
            self.first_step_loss, self.first_step_mask = step_loss, mask_pos
        else:
            backward(step_loss)
        self.active_per_step.append(int(active.numel()))
        return active, logits, losses.detach(), mask_pos.detach()  # M⁺'s graph freed (not in this loss)

    def merge(
        self,
        step: int,
        active: Tensor,
        logits: Tensor,
        losses: Tensor,
        mask_pos: Tensor,
        slope: float,
        history_rule: HistoryRule,
    ) -> None:
        """R⁺* ← max(R⁺*, Ψ·M⁺) on the active samples, erase the trusted ones, update h (Eq. 12–14)."""
        self.step_losses.append(losses.mean())
        if self.accumulated is None or self.first_losses is None or self.first_logits is None:
            self.accumulated = torch.zeros_like(mask_pos)
            self.first_losses = losses
            self.first_logits = logits.detach()
        trust, new_history = trust_coefficients(
            step,
            logits,
            self.labels[active],
            losses,
            self.first_losses[active],
            self.history[active],
            slope,
            history_rule,
        )
        weighted = trust.view(-1, 1, 1, 1).to(mask_pos.dtype)
        merged = torch.maximum(self.accumulated[active], weighted * mask_pos)
        self.accumulated[active] = merged
        if step == 0 and self.keep_first_graph:
            self.first_step_trust = weighted
        trusted = trust > 0
        self.erased[active[trusted]] = self.erased[active[trusted]] * (1.0 - merged[trusted])
        self.history[active] = new_history

    def result(self) -> ErasingResult:
        assert self.accumulated is not None and self.first_logits is not None  # the first step always runs
        result = ErasingResult(
            accumulated_mask=self.accumulated,
            localizer_loss=torch.stack(self.step_losses).mean(),
            first_logits=self.first_logits,
            active_per_step=self.active_per_step,
        )
        if self.first_step_trust is not None and self.first_step_mask is not None:
            result.first_step_loss = self.first_step_loss
            result.first_step_mask = self.first_step_trust * self.first_step_mask
        return result
