"""NEGEV: Belharbi et al., "Negative Evidence Matters in Interpretable Histology Image Classification" (MIDL
2022, arXiv 2201.02445).

F-CAM's decoder (:class:`wsol.methods.fcam.FCAM`) with two changes (§2): negative images, which contain no
object of interest (those the dataset declares object-free, e.g. BUSI ``normal``, with ``no_object_negative``
on by default; and those of the classes listed in ``negative_classes``: a benign grade, any class a user marks
as background), get the negative-evidence term, a cross-entropy with every pixel labelled background (weight
``loss.negative``, 1 by default), and no seed or size term; seeds are drawn with the probability rule
(foreground ∝ CAM, :mod:`wsol.methods.seeding`). Without negative classes it is F-CAM with the probability
seeder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wsol.methods.fcam import FCAM


class NEGEV(FCAM):
    """NEGEV (registered as ``negev``): F-CAM options plus ``negative_classes``; see the module docstring."""

    def __init__(
        self,
        num_classes: int,
        negative_classes: Sequence[int] = (),
        no_object_negative: bool = True,
        seeds: Mapping[str, Any] | None = None,
        loss: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        seeds = {"rule": "probability", **dict(seeds or {})}
        loss = {"negative": 1.0, **dict(loss or {})}
        super().__init__(
            num_classes,
            seeds=seeds,
            loss=loss,
            negative_classes=negative_classes,
            no_object_negative=no_object_negative,
            **options,
        )
