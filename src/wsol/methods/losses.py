"""Loss terms shared by the training-time methods, as small pure functions on tensors.

Entropy terms follow Belharbi et al., "Min-max entropy for weakly supervised pointwise localization"
(arXiv 1907.12934 §3.2, Eq. 3–6) and the max-min uncertainty follow-up (TMI 2022;
sbelharbi/deep-wsl-histo-min-max-uncertainty). The extended log-barrier is Kervadec et al.'s (TMI 2022 §4
size constraint, "ASC").

Logarithm base: the arXiv paper's code uses the natural log, the TMI code log base 2. Every entropy helper
takes ``log_base`` (``None`` = natural log); a base-2 value equals the natural-log value divided by ln 2, i.e.
the choice only rescales the term's weight.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "cross_entropy",
    "cross_entropy_to_uniform",
    "entropy",
    "extended_log_barrier",
    "negative_entropy",
    "size_barrier",
]


def _check_logits(logits: Tensor, name: str = "logits") -> None:
    if logits.ndim != 2:
        raise ValueError(f"{name} must have shape (B, K), got {tuple(logits.shape)}")


def _log_scale(log_base: float | None) -> float:
    if log_base is None:
        return 1.0
    if log_base <= 0 or log_base == 1:
        raise ValueError(f"log_base must be positive and != 1 (or None for the natural log), got {log_base}")
    return 1.0 / math.log(log_base)


def cross_entropy(logits: Tensor, labels: Tensor, reduction: str = "mean") -> Tensor:
    """Cross-entropy H(y, p̂) with the image label (arXiv 1907.12934 Eq. 3 on X⁺, Eq. 8 at the localizer).

    ``reduction`` is ``"mean"`` (batch mean), ``"sum"`` or ``"none"`` (per sample, shape (B,)).
    """
    _check_logits(logits)
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"labels must have shape ({logits.shape[0]},), got {tuple(labels.shape)}")
    return F.cross_entropy(logits, labels, reduction=reduction)


def cross_entropy_to_uniform(
    logits: Tensor, log_base: float | None = None, reduction: str = "mean"
) -> Tensor:
    """Cross-entropy between the uniform distribution q and p̂: −(1/K) Σ_k log p̂_k (arXiv 1907.12934 Eq. 5–6).

    The entropy-maximisation surrogate on X⁻; its minimum, log K, is reached when p̂ is uniform. The TMI paper
    calls it SEM ("supervised entropy maximisation", TMI 2022).
    """
    _check_logits(logits)
    per_sample = -F.log_softmax(logits, dim=1).mean(dim=1) * _log_scale(log_base)
    return _reduce(per_sample, reduction)


def entropy(logits: Tensor, log_base: float | None = None, reduction: str = "mean") -> Tensor:
    """Shannon entropy H(p̂) = −Σ_k p̂_k log p̂_k of the softmax of ``logits`` (arXiv 1907.12934 Eq. 2/4)."""
    _check_logits(logits)
    log_p = F.log_softmax(logits, dim=1)
    per_sample = -(log_p.exp() * log_p).sum(dim=1) * _log_scale(log_base)
    return _reduce(per_sample, reduction)


def negative_entropy(logits: Tensor, log_base: float | None = None, reduction: str = "mean") -> Tensor:
    """−H(p̂), to minimise: the TMI paper's EEM regulariser ("explicit entropy maximisation", TMI 2022)."""
    return -entropy(logits, log_base=log_base, reduction=reduction)


def extended_log_barrier(z: Tensor, t: float) -> Tensor:
    """Kervadec et al.'s extended log-barrier ψ_t(z) for the constraint z ≤ 0 (TMI ASC).

    ψ_t(z) = −(1/t) log(−z) if z ≤ −1/t², else t·z − (1/t) log(1/t²) + 1/t. Both pieces meet with equal value
    and slope at z = −1/t², so the function is C¹ and finite for violated constraints (z > 0), unlike the
    standard barrier. Elementwise.
    """
    if t <= 0:
        raise ValueError(f"the log-barrier parameter t must be > 0, got {t}")
    threshold = -1.0 / t**2
    inside = z <= threshold
    # Evaluate log only where it is defined; the masked branch never sees non-negative arguments.
    safe = torch.where(inside, -z, torch.ones_like(z))
    barrier = -torch.log(safe) / t
    linear = t * z - math.log(1.0 / t**2) / t + 1.0 / t
    return torch.where(inside, barrier, linear)


def size_barrier(mask: Tensor, t: float) -> Tensor:
    """Absolute size constraint on both regions, −(1/t)[log s⁺ + log s⁻] with the extended log-barrier.

    ``mask`` is M⁺ (B, H, W) or (B, 1, H, W) in [0, 1]; s⁺ = Σ_z M⁺(z) and s⁻ = Σ_z (1 − M⁺(z)) are
    unnormalised pixel sums per sample. Each is pushed to be > 0 through ψ_t(−s) (TMI 2022), summed over the
    two regions and averaged over the batch.
    """
    if mask.ndim not in (3, 4):
        raise ValueError(f"mask must have shape (B, H, W) or (B, 1, H, W), got {tuple(mask.shape)}")
    flat = mask.flatten(start_dim=1)
    size_pos = flat.sum(dim=1)
    size_neg = (1.0 - flat).sum(dim=1)
    return (extended_log_barrier(-size_pos, t) + extended_log_barrier(-size_neg, t)).mean()


def _reduce(values: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
