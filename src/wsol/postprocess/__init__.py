"""Post-processing of predicted localization maps (dense-CRF refinement of min-max entropy masks)."""

from __future__ import annotations

from wsol.postprocess.crf import CRF_PRESETS, CRFParams, refine_batch, refine_mask, refine_masks

__all__ = ["CRF_PRESETS", "CRFParams", "refine_batch", "refine_mask", "refine_masks"]
