"""The registry of metric families the evaluator runs, in this order (``wsol.evaluation.family``).

A new family is one file with a :class:`~wsol.evaluation.family.MetricFamily` subclass and one line here;
catalogue its metrics in :mod:`wsol.evaluation.catalogue` to log, select on or tabulate them.
"""

from wsol.evaluation.family import MetricFamily
from wsol.registry import Registry

FAMILIES: Registry[type[MetricFamily]] = Registry(
    "metric family",
    {
        "images": "wsol.evaluation.families.images:ImageCounts",
        "classification": "wsol.evaluation.families.classification:Classification",
        "box": "wsol.evaluation.families.box:BoxAccuracy",
        "pixel": "wsol.evaluation.families.pixel:PixelMetrics",
        "weightmap_score": "wsol.evaluation.families.weightmap_score:WeightMapScore",
    },
)
