"""Using a trained checkpoint: safe loading, ``evaluate_checkpoint``, ``wsol localize`` and the overlay."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from engine_helpers import cli_env, read_metrics

from wsol.data.format import read_split
from wsol.evaluation import EvaluatorConfig
from wsol.methods.cam_baseline import PoolingHeadMethod
from wsol.methods.checkpoint import load_checkpoint
from wsol.report.overlay import OverlayStyle, draw_overlay
from wsol.training.inference import evaluate_checkpoint, mask_boxes, predict_images
from wsol.training.run import resolve_data_root


def _data_root(run_dir: Path) -> Path:
    config = load_checkpoint(run_dir / "checkpoints" / "best.ckpt").config
    return resolve_data_root(config["data"])


def test_evaluate_checkpoint_reproduces_the_training_report(reference: Path, tmp_path: Path) -> None:
    loaded = load_checkpoint(reference / "checkpoints" / "best.ckpt")
    method, config = loaded.method, loaded.config
    assert isinstance(method, PoolingHeadMethod) and not method.training
    result = evaluate_checkpoint(
        reference / "checkpoints" / "best.ckpt",
        _data_root(reference),
        "test",
        None,
        tmp_path,
        EvaluatorConfig(**config["eval"]),
    )
    expected = read_metrics(reference)["test"]
    assert result.pxap == pytest.approx(expected["test/pxap"], abs=1e-9)
    assert result.max_box_acc_v2 == pytest.approx(expected["test/max_box_acc_v2"], abs=1e-9)
    assert result.top1_err == pytest.approx(expected["test/error"], abs=1e-9)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["split"] == "test" and written["pxap"] == pytest.approx(result.pxap)


def test_load_checkpoint_rejects_a_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match=r"foreign\.ckpt: not a `wsol train` checkpoint"):
        load_checkpoint(path)


def test_localize_cli_writes_consistent_outputs(reference: Path, tmp_path: Path) -> None:
    root = _data_root(reference)
    records = read_split(root, "test")[:2]
    images = [root / "images" / record.image_id for record in records]
    out = tmp_path / "out"
    command = [sys.executable, "-m", "wsol.cli.main", "localize", "--checkpoint"]
    command += [str(reference / "checkpoints" / "best.ckpt"), *map(str, images), "--out", str(out)]
    result = subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for image_path in images:
        stem = image_path.stem
        prediction = json.loads((out / f"{stem}_prediction.json").read_text())
        assert sum(prediction["probabilities"]) == pytest.approx(1.0)
        assert prediction["predicted_class"] == int(np.argmax(prediction["probabilities"]))
        heatmap = np.load(out / f"{stem}_map.npy")
        image = cv2.imread(str(image_path))
        assert heatmap.shape == image.shape[:2] and heatmap.min() >= 0 and heatmap.max() <= 1
        mask = cv2.imread(str(out / f"{stem}_mask.png"), cv2.IMREAD_GRAYSCALE) > 0
        assert np.array_equal(mask, heatmap >= 0.5)
        boxes = json.loads((out / f"{stem}_boxes.json").read_text())
        largest, every = mask_boxes(mask)
        assert boxes == {"threshold": 0.5, "largest": largest, "all": every}
        overlay = cv2.imread(str(out / f"{stem}_overlay.png"))
        assert overlay.shape == image.shape

    bad = subprocess.run(
        [sys.executable, "-m", "wsol.cli.main", "localize", "--checkpoint", str(tmp_path / "nope.ckpt")]
        + [str(images[0]), "--out", str(out)],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert bad.returncode == 2 and "nope.ckpt: checkpoint not found" in bad.stderr


def test_post_hoc_cam_maps(reference: Path) -> None:
    loaded = load_checkpoint(reference / "checkpoints" / "best.ckpt")
    method, config = loaded.method, loaded.config
    root = _data_root(reference)
    image = root / "images" / read_split(root, "test")[0].image_id
    own = next(predict_images(method, config, [image]))
    cam = next(predict_images(method, config, [image], cam="gradcam", threshold=0.3))
    assert cam.map.shape == own.map.shape and 0 <= cam.map.min() and cam.map.max() <= 1
    assert cam.predicted_class == own.predicted_class
    assert cam.probabilities == pytest.approx(own.probabilities, abs=1e-5)
    assert np.array_equal(cam.mask, cam.map >= 0.3) and cam.threshold == 0.3
    with pytest.raises(ValueError, match="unknown CAM method"):
        next(predict_images(method, config, [image], cam="nocam"))


def test_mask_boxes_hand_computed() -> None:
    mask = np.zeros((10, 12), bool)
    mask[1:3, 2:5] = True  # 2 x 3 blob
    mask[5:9, 6:11] = True  # 4 x 5 blob, the largest
    largest, every = mask_boxes(mask)
    assert largest == [6.0, 5.0, 11.0, 9.0]
    assert sorted(every) == [[2.0, 1.0, 5.0, 3.0], [6.0, 5.0, 11.0, 9.0]]
    assert mask_boxes(np.zeros((4, 4), bool)) == (None, [])


def test_overlay_blends_and_draws() -> None:
    image = np.full((8, 10, 3), 100, np.uint8)
    heatmap = np.zeros((8, 10))
    plain = draw_overlay(image, heatmap, style=OverlayStyle(alpha=0.0))
    assert np.array_equal(plain, image)
    colored = draw_overlay(image, heatmap, style=OverlayStyle(alpha=1.0, colormap="jet"))
    assert tuple(colored[0, 0]) == (0, 0, 128)  # jet(0) is dark blue in RGB
    boxed = draw_overlay(
        image, heatmap, boxes=[[2, 1, 6, 5]], style=OverlayStyle(alpha=0.0, box_color=(0, 255, 0))
    )
    assert tuple(boxed[1, 2]) == (0, 255, 0) and tuple(boxed[4, 5]) == (0, 255, 0)
    assert tuple(boxed[3, 3]) == (100, 100, 100)
    mask = np.zeros((8, 10), bool)
    mask[2:6, 3:7] = True
    contoured = draw_overlay(
        image, heatmap, mask=mask, style=OverlayStyle(alpha=0.0, contour_color=(255, 0, 0))
    )
    assert tuple(contoured[2, 3]) == (255, 0, 0) and tuple(contoured[3, 4]) == (100, 100, 100)
    with pytest.raises(ValueError, match="heatmap: expected shape"):
        draw_overlay(image, np.zeros((4, 4)))


def test_checkpoint_of_a_pretrained_run_loads_without_the_weights_file(tmp_path: Path) -> None:
    from wsol.training.checkpoint import AtomicCheckpointIO
    from wsol.training.config import load_config, to_plain
    from wsol.training.module import WSOLLightningModule

    weights = tmp_path / "tiny.pth"
    torch.save(PoolingHeadMethod(2, backbone="tiny").classifier.backbone.state_dict(), weights)
    config = to_plain(load_config(None, [f"method.options.weights={weights}"]))
    method = PoolingHeadMethod(2, backbone="tiny", weights=str(weights))
    module = WSOLLightningModule(method, config, class_names=["a", "b"])
    checkpoint: dict = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    AtomicCheckpointIO().save_checkpoint(checkpoint, tmp_path / "run.ckpt")
    weights.unlink()
    checkpoint = load_checkpoint(tmp_path / "run.ckpt")
    loaded, loaded_config = checkpoint.method, checkpoint.config
    assert loaded_config["method"]["options"]["weights"] == str(weights)
    for key, value in method.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
