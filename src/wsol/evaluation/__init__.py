"""WSOL evaluation: classification, box and pixel metrics, exact to the reference and fast.

``WSOLEvaluator(EvaluatorConfig(...))`` streams batches (``update``) and returns an ``EvaluationResult``
(``compute``); ``parity="wsolevaluation"`` reproduces clovaai/wsolevaluation's numbers exactly. Metrics are
computed by the families of ``wsol.evaluation.families`` and named in ``wsol.evaluation.catalogue``. Per-image
pieces (``boxes_from_map``, ``iou_matrix``, ``box_from_map_weightmap``) are exported for other layers. Names
are re-exported lazily (``wsol.registry.lazy_exports``), so the light ``wsol.evaluation.catalogue`` loads
without numba or OpenCV.
"""

from wsol.registry import lazy_exports

_EXPORTS = {
    "EvaluationResult": "wsol.evaluation.evaluator",
    "EvaluatorConfig": "wsol.evaluation.config",
    "WSOLEvaluator": "wsol.evaluation.evaluator",
    "box_correctness": "wsol.evaluation.boxes",
    "box_from_map_weightmap": "wsol.evaluation.weightmap_score",
    "boxes_from_map": "wsol.evaluation.boxes",
    "iou_matrix": "wsol.evaluation.boxes",
    "mean_weightmap_score": "wsol.evaluation.weightmap_score",
    "weightmap_s_score": "wsol.evaluation.weightmap_score",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
