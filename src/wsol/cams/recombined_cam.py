"""CAM with recombined classifier weights (Z. Zhang, MSc thesis, Concordia 2021, §5.4.2, Eq. 20-21).

Eq. 20 splits CAM into the positively and negatively weighted channels, M_c = M_p + M_n with
M_p = Σ_{w_p > 0} w_p F_p and M_n = Σ_{w_n < 0} w_n F_n. The thesis argues the negatively weighted maps still
hold the less discriminative object parts, so they should not be inhibited, and Eq. 21 uses M_c = M_p − M_n.
Our reading: with w_n < 0, −M_n = Σ |w_n| F_n, so M_c = Σ_k |W_fc[c, k]| F_k: every channel is weighted by the
magnitude of its classifier weight. (Splitting W into W⁺ − W⁻ and taking M_p − M_n with W⁻ = max(−W, 0) ≥ 0
would give back plain CAM; the text's w_n are the signed weights, which is what keeps the evidence.)
"""

from __future__ import annotations

from torch import Tensor

from wsol.cams.cam import CAM


class RecombinedCAM(CAM):
    """CAM weighted by |W_fc[c, k]| (thesis Eq. 21)."""

    def transform_weights(self, weight: Tensor) -> Tensor:
        return weight.abs()
