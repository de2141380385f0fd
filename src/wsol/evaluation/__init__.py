"""WSOL evaluation: classification, box and pixel metrics, exact to the reference and fast.

``WSOLEvaluator(EvaluatorConfig(...))`` streams batches (``update``) and returns an ``EvaluationResult``
(``compute``); ``parity="wsolevaluation"`` reproduces clovaai/wsolevaluation's numbers exactly. Per-image
pieces (``boxes_from_map``, ``iou_matrix``, ``box_from_map_weightmap``) are exported for other layers.
"""

from wsol.evaluation.boxes import box_correctness, boxes_from_map, iou_matrix
from wsol.evaluation.evaluator import EvaluationResult, EvaluatorConfig, WSOLEvaluator
from wsol.evaluation.weightmap_score import box_from_map_weightmap, mean_weightmap_score

__all__ = [
    "EvaluationResult",
    "EvaluatorConfig",
    "WSOLEvaluator",
    "box_correctness",
    "box_from_map_weightmap",
    "boxes_from_map",
    "iou_matrix",
    "mean_weightmap_score",
]
