"""``wsol evaluate --maps``: a folder of .npy maps scored against a dataset or a raw metadata split folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from wsol.cli import evaluate as cli
from wsol.data.format import DatasetInfo, ImageRecord, write_dataset
from wsol.evaluation import EvaluatorConfig, WSOLEvaluator
from wsol.evaluation.parity import resize_box


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["evaluate", *argv])
    return args.func(args)


def _records() -> list[ImageRecord]:
    return [
        ImageRecord("a/one.jpg", 0, 40, 30, boxes=((4.0, 3.0, 20.0, 15.0),)),
        ImageRecord("b/two.jpg", 1, 50, 50, boxes=((10.0, 10.0, 40.0, 45.0), (0.0, 0.0, 5.0, 5.0))),
        ImageRecord("c/three.jpg", 1, 32, 32, boxes=((0.0, 16.0, 31.0, 31.0),)),
    ]


def _maps(root: Path, records: list[ImageRecord], size: int = 28) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    maps = []
    for index, record in enumerate(records):
        scoremap = cv2.resize(
            rng.random((4, 4)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC
        )
        scoremap = np.clip(scoremap, 0, 1)
        path = root / (record.image_id + ".npy" if index % 2 else Path(record.image_id).with_suffix(".npy"))
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, scoremap)
        maps.append(scoremap)
    return maps


def test_maps_against_a_dataset_in_parity_mode(tmp_path: Path) -> None:
    records = _records()
    write_dataset(tmp_path / "data", DatasetInfo(name="toy", num_classes=2, splits=[]), {"test": records})
    maps = _maps(tmp_path / "maps", records, size=224)
    out = tmp_path / "out"
    code = _run(["--maps", str(tmp_path / "maps"), "--data", str(tmp_path / "data"), "--split", "test",
                 "--out", str(out), "--parity", "--cam-curve-interval", "0.05"])  # fmt: skip
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (out / "tau_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Same numbers as the API with GT boxes mapped to the 224 frame by the reference's truncating rescale.
    evaluator = WSOLEvaluator(
        EvaluatorConfig(parity="wsolevaluation", cam_curve_interval=0.05, normalize=False)
    )
    boxes = [torch.tensor([resize_box(b, (r.width, r.height), (224, 224)) for b in r.boxes]) for r in records]
    evaluator.update(torch.from_numpy(np.stack(maps)), boxes=boxes)
    expected = evaluator.compute().to_dict()
    assert metrics["max_box_acc"] == expected["max_box_acc"]
    assert metrics["max_box_acc_v2"] == pytest.approx(expected["max_box_acc_v2"])
    assert metrics["num_box_images"] == 3


def test_raw_metadata_split_with_masks(tmp_path: Path) -> None:
    split = tmp_path / "metadata" / "test"
    split.mkdir(parents=True)
    (split / "image_ids.txt").write_text("x.png\ny.png\n")
    (split / "class_labels.txt").write_text("x.png,0\ny.png,0\n")
    (split / "image_sizes.txt").write_text("x.png,16,16\ny.png,16,16\n")
    (split / "localization.txt").write_text("x.png,mx.png,ix.png\ny.png,my.png,\n")
    masks = tmp_path / "masks"
    masks.mkdir()
    foreground = np.zeros((16, 16), np.uint8)
    foreground[4:10, 4:10] = 255
    ignore = np.zeros((16, 16), np.uint8)
    ignore[0:4, :] = 255
    for name, image in (("mx.png", foreground), ("ix.png", ignore), ("my.png", foreground)):
        cv2.imwrite(str(masks / name), image)
    scoremap = (foreground / 255.0).astype(np.float32)
    maps = tmp_path / "maps"
    maps.mkdir()
    np.save(maps / "x.png.npy", scoremap)
    np.save(maps / "y.npy", scoremap)
    out = tmp_path / "out"
    assert (
        _run(["--maps", str(maps), "--data", str(split), "--mask-root", str(masks), "--out", str(out)]) == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pxap"] == pytest.approx(100.0)
    assert metrics["f1_pos"] == pytest.approx(100.0)
    assert metrics["max_box_acc"] is None
    assert (out / "pr_curves.png").is_file()


def test_missing_map_and_bad_data_folder_are_clear_errors(tmp_path: Path) -> None:
    records = _records()
    write_dataset(tmp_path / "data", DatasetInfo(name="toy", num_classes=2, splits=[]), {"test": records})
    (tmp_path / "maps").mkdir()
    with pytest.raises(FileNotFoundError, match="a/one.jpg"):
        _run(["--maps", str(tmp_path / "maps"), "--data", str(tmp_path / "data"), "--split", "test",
              "--out", str(tmp_path / "out")])  # fmt: skip
    with pytest.raises(FileNotFoundError, match="dataset.json"):
        _run(["--maps", str(tmp_path / "maps"), "--data", str(tmp_path), "--out", str(tmp_path / "out")])
    np.save(tmp_path / "maps" / "bad.npy", np.zeros((2, 3, 4)))
    from wsol.evaluation.maps_io import load_scoremap

    with pytest.raises(ValueError, match="bad.npy"):
        load_scoremap(tmp_path / "maps" / "bad.npy")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("normalize", [False, True])
def test_a_non_finite_map_is_named_by_its_file(tmp_path: Path, bad: float, normalize: bool) -> None:
    records = _records()
    write_dataset(tmp_path / "data", DatasetInfo(name="toy", num_classes=2, splits=[]), {"test": records})
    _maps(tmp_path / "maps", records)
    broken = tmp_path / "maps" / "b" / "two.jpg.npy"
    scoremap = np.load(broken)
    scoremap[3, 4] = bad
    np.save(broken, scoremap)
    argv = ["--maps", str(tmp_path / "maps"), "--data", str(tmp_path / "data"), "--split", "test"]
    argv += ["--out", str(tmp_path / "out"), "--normalize" if normalize else "--no-normalize"]
    if normalize and np.isnan(bad):  # wsolevaluation's rule: a NaN map is scored as an all-zero map
        assert _run(argv) == 0
        return
    with pytest.raises(ValueError, match=rf"{broken}: score map (contains NaN|holds 1 infinite|values must)"):
        _run(argv)
