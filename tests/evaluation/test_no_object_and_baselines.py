"""No-object images in the evaluator; the trivial baselines against hand-computed values and via the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from wsol.cli.main import main
from wsol.data.format import DatasetInfo, ImageRecord, write_dataset
from wsol.evaluation import EvaluatorConfig, WSOLEvaluator
from wsol.methods.baselines import all_ones, center

LOCALIZATION = ("pxap", "max_box_acc_v1", "max_box_acc_v2", "f1_pos", "f1_neg", "miou")


def _evaluate(maps, masks, boxes, logits, labels, has_object=None):
    evaluator = WSOLEvaluator(EvaluatorConfig(cam_curve_interval=0.01))
    evaluator.update(maps, masks=masks, boxes=boxes, labels=labels, logits=logits, has_object=has_object)
    return evaluator.compute()


def test_no_object_images_count_for_classification_only():
    torch.manual_seed(0)
    maps = torch.rand(3, 8, 8)
    masks = torch.zeros(3, 8, 8)
    masks[0, 2:6, 2:6] = 1
    masks[2, 0:3, 0:8] = 1  # given for the no-object image 2: must be ignored
    boxes = [torch.tensor([[2.0, 2.0, 6.0, 6.0]]), torch.zeros(0, 4), torch.tensor([[0.0, 0.0, 8.0, 3.0]])]
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    labels = torch.tensor([0, 0, 1])
    both = _evaluate(maps, masks, boxes, logits, labels, has_object=torch.tensor([True, True, False]))
    assert both.num_no_object_images == 1 and both.num_classified == 3
    assert both.top1_acc == pytest.approx(100 / 3)  # image 2 is misclassified and still counts
    assert both.num_box_images == 1 and both.num_mask_images == 2
    without = _evaluate(maps[:2], masks[:2], boxes[:2], logits[:2], labels[:2])
    for name in LOCALIZATION:
        assert getattr(both, name) == getattr(without, name), name
    with pytest.raises(ValueError, match="has_object"):
        _evaluate(maps, masks, boxes, logits, labels, has_object=torch.tensor([True, False]))


def test_center_map_hand_computed_and_all_ones_metrics():
    images = torch.zeros(2, 3, 4, 6)
    gauss = center(images)
    assert gauss.shape == (2, 4, 6)
    # Pixel (0, 0): y = (0.5 - 2) / (0.25 * 4) = -1.5, x = (0.5 - 3) / (0.25 * 6) = -5 / 3.
    assert float(gauss[0, 0, 0]) == pytest.approx(math.exp(-0.5 * (1.5**2 + (5 / 3) ** 2)))
    assert float(gauss[1, 1, 2]) == pytest.approx(math.exp(-0.5 * (0.5**2 + (0.5 / 1.5) ** 2)))
    ones = all_ones(images)
    masks = torch.zeros(2, 4, 6)
    masks[:, 1:3, 1:3] = 1  # 4 of 24 pixels
    evaluator = WSOLEvaluator(EvaluatorConfig(normalize=False))
    evaluator.update(ones, masks=masks)
    result = evaluator.compute()
    assert result.pxap == pytest.approx(100 * 4 / 24)  # one operating point: precision 4/24 at recall 1
    assert result.f1_pos == pytest.approx(100 * 2 * 4 / (4 + 24))  # F1⁺ = 2|O| / (|O| + |I|)
    assert result.f1_neg == pytest.approx(0.0)


def _tiny_dataset(root):
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    records = []
    for index, (width, height) in enumerate([(20, 16), (24, 16), (20, 18), (22, 16)]):
        Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(
            root / f"images/{index}.png"
        )
        label = index % 2
        if label == 1:  # a no-object class
            records.append(ImageRecord(f"{index}.png", label, width, height))
            continue
        mask = np.zeros((height, width), np.uint8)
        mask[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = 255
        Image.fromarray(mask).save(root / f"masks/{index}.png")
        box = (width // 4, height // 4, 3 * (width // 4), 3 * (height // 4))
        records.append(
            ImageRecord(f"{index}.png", label, width, height, boxes=(box,), mask_paths=(f"{index}.png",))
        )
    info = DatasetInfo("tiny", 2, [], class_names=["lesion", "normal"], no_object_classes=[1])
    write_dataset(root, info, {"test": records})
    return root


def test_cli_evaluates_baselines_on_images_of_varying_sizes(tmp_path, capsys):
    root = _tiny_dataset(tmp_path / "data")
    results = {}
    for name in ("all_ones", "center"):
        out = tmp_path / name
        args = ["evaluate", "--baseline", name, "--data", str(root), "--split", "test", "--out", str(out)]
        assert main([*args, "--frame-size", "32"]) == 0
        results[name] = json.loads((out / "metrics.json").read_text())
    for result in results.values():
        assert result["num_images"] == 4 and result["num_no_object_images"] == 2
        assert result["top1_acc"] is None and result["transforms"] == {"frame": 32}
    assert results["all_ones"]["f1_neg"] == 0.0
    assert results["center"]["pxap"] > results["all_ones"]["pxap"]  # centred objects
    with pytest.raises(SystemExit):
        main(["evaluate", "--baseline", "nope", "--data", str(root), "--out", str(tmp_path)])
