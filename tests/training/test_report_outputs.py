"""Honest protocol and outputs on a trained checkpoint: validation τ, per-image statistics, provenance,
standard exports (COCO read by pycocotools), ``wsol compare``, ``wsol report`` opened in headless Chromium,
``wsol train --seeds``."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from engine_helpers import TINY
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO

from wsol.cli.main import main
from wsol.data.format import read_split
from wsol.evaluation.per_image import PerImageStats
from wsol.evaluation.pixel import pxap
from wsol.evaluation.protocol import headline_indices
from wsol.methods.checkpoint import load_checkpoint
from wsol.training.run import resolve_data_root


def _root(run_dir: Path) -> Path:
    config = load_checkpoint(run_dir / "checkpoints" / "best.ckpt").config
    return resolve_data_root(config["data"])


@pytest.fixture(scope="module")
def evaluations(reference: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two methods on the same test images: the run's own maps (with exports) and post-hoc Grad-CAM."""
    out = tmp_path_factory.mktemp("evaluations")
    checkpoint = str(reference / "checkpoints" / "best.ckpt")
    common = ["--data", str(_root(reference)), "--split", "test", "--cam-curve-interval", "0.01"]
    assert main(["evaluate", "--checkpoint", checkpoint, *common, "--out", str(out / "own"), "--export"]) == 0
    assert (
        main(["evaluate", "--checkpoint", checkpoint, *common, "--out", str(out / "gc"), "--cam", "gradcam"])
        == 0
    )
    return {"own": out / "own", "gc": out / "gc", "root": _root(reference), "out": out}


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def test_validation_tau_is_the_best_tau_of_the_validation_split(evaluations: dict[str, Path]) -> None:
    metrics = _metrics(evaluations["own"])
    val_dir = evaluations["out"] / "val"
    common = ["--data", str(evaluations["root"]), "--cam-curve-interval", "0.01", "--val-split", "none"]
    checkpoint = metrics["checkpoint"]
    assert (
        main(["evaluate", "--checkpoint", checkpoint, "--split", "val", *common, "--out", str(val_dir)]) == 0
    )
    val = _metrics(val_dir)
    assert "val_tau" not in val
    assert metrics["val_tau"]["split"] == "val"
    for key in ("f1_pos", "box_acc@50", "box_acc_v2@70"):
        assert metrics["val_tau"]["tau"][key] == pytest.approx(val["best_tau"][key])
    taus = np.asarray(metrics["curves"]["tau"])
    index = int(np.argmin(np.abs(taus - metrics["val_tau"]["tau"]["f1_pos"])))
    assert metrics["val_tau"]["metrics"]["f1_pos_best"] == pytest.approx(metrics["curves"]["f1_pos"][index])
    assert (
        metrics["val_tau"]["metrics"]["f1_pos_best"] <= metrics["f1_pos_best"] + 1e-9
    )  # oracle is an upper bound
    assert metrics["val_tau"]["metrics"]["max_box_acc_v2"] <= metrics["max_box_acc_v2"] + 1e-9


def test_per_image_statistics_add_up_to_the_split_metrics(evaluations: dict[str, Path]) -> None:
    metrics = _metrics(evaluations["own"])
    stats = PerImageStats.load(evaluations["own"] / "per_image.npz")
    assert sorted(stats.image_id.tolist()) == sorted(
        r.image_id for r in read_split(evaluations["root"], "test")
    )
    oracle = stats.values_at(headline_indices(metrics, oracle=True))
    assert np.nanmean(oracle["f1_pos_best"]) == pytest.approx(metrics["f1_pos_best"])
    assert np.nanmean(oracle["max_box_acc_v2"]) == pytest.approx(metrics["max_box_acc_v2"])
    assert np.nanmean(oracle["f1_pos"]) == pytest.approx(metrics["f1_pos"])
    assert np.mean(stats.top1) * 100 == pytest.approx(metrics["top1_acc"])
    headline = stats.values_at(headline_indices(metrics))
    assert np.nanmean(headline["box_acc@50"]) == pytest.approx(metrics["val_tau"]["metrics"]["gt_known_loc"])
    assert np.nanmean(headline["f1_neg_best"]) == pytest.approx(metrics["val_tau"]["metrics"]["f1_neg_best"])
    summed = stats.hist.astype(np.float64).sum(0)
    assert pxap(summed[0], summed[1])[0] == pytest.approx(metrics["pxap"])


def test_provenance_traces_the_number(evaluations: dict[str, Path], reference: Path) -> None:
    record = _metrics(evaluations["own"])["provenance"]
    root = evaluations["root"]
    digest = hashlib.sha256()
    for name in record["dataset"]["metadata_files"]:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    assert record["dataset"]["metadata_sha256"] == digest.hexdigest()
    assert "metadata/test/image_ids.txt" in record["dataset"]["metadata_files"]
    assert record["dataset"]["name"].startswith("synthetic")
    config = load_checkpoint(reference / "checkpoints" / "best.ckpt").config
    assert record["seed"] == config["seed"] and record["run_config"]["method"] == config["method"]
    assert record["evaluator"]["protocol"] == "default" and record["evaluator"]["cam_curve_interval"] == 0.01
    assert record["machine"]["torch"] and record["wsol"]["version"] == "0.1.0"
    assert record["label"] == "cam" and _metrics(evaluations["gc"])["provenance"]["label"] == "cam+gradcam"


def test_exported_maps_reproduce_the_metrics_and_coco_loads(evaluations: dict[str, Path]) -> None:
    own = evaluations["own"]
    again = evaluations["out"] / "again"
    args = [
        "--maps",
        str(own / "predictions" / "maps"),
        "--data",
        str(evaluations["root"]),
        "--split",
        "test",
    ]
    assert main(["evaluate", *args, "--cam-curve-interval", "0.01", "--out", str(again)]) == 0
    first, second = _metrics(own), _metrics(again)
    for key in ("pxap", "max_box_acc_v2", "f1_pos_best", "f1_neg", "miou_best"):
        assert second[key] == pytest.approx(first[key], abs=1e-6), key
    coco = COCO(str(own / "predictions" / "predictions_coco.json"))
    assert len(coco.getImgIds()) == 8
    for annotation in coco.loadAnns(coco.getAnnIds()):
        image = coco.loadImgs(annotation["image_id"])[0]
        mask = (
            cv2.imread(str(own / "predictions" / "masks" / Path(image["file_name"]).with_suffix(".png")), 0)
            > 0
        )
        decoded = coco.annToMask(annotation).astype(bool)
        x, y, w, h = (int(v) for v in annotation["bbox"])
        assert np.array_equal(decoded[y : y + h, x : x + w], mask[y : y + h, x : x + w])
        assert not decoded[mask == 0].any() and 0 < annotation["score"] <= 1


def test_compare_and_report_open_in_headless_chromium(evaluations: dict[str, Path], tmp_path: Path) -> None:
    runs = [str(evaluations["own"]), str(evaluations["gc"])]
    assert main(["compare", *runs, "--out", str(tmp_path / "cmp"), "--resamples", "200"]) == 0
    document = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    (pair,) = document["paired"]
    assert (pair["a"], pair["b"], pair["n_images"]) == ("cam", "cam+gradcam", 8)
    for entry in pair["metrics"].values():
        assert entry["low"] <= entry["difference"] + 1e-9 and entry["difference"] <= entry["high"] + 1e-9
    assert main(["report", *runs, "--out", str(tmp_path / "report"), "--resamples", "200"]) == 0
    page = tmp_path / "report" / "index.html"
    assert len(list((tmp_path / "report" / "assets" / "overlays").glob("*.png"))) == 8  # only `own` has maps
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium is not installed (CI installs Debian's `chromium`)")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,900",
    ]
    shot = tmp_path / "shot.png"
    common = [browser, *flags, f"--user-data-dir={tmp_path / 'profile1'}"]
    subprocess.run(
        [*common, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True
    )
    picture = cv2.imread(str(shot))
    assert picture is not None and picture.shape[:2] == (900, 1200)
    assert picture.std() > 10 and len(np.unique(picture.reshape(-1, 3), axis=0)) > 50  # not blank
    dom = subprocess.run(
        [browser, *flags, f"--user-data-dir={tmp_path / 'profile2'}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None and 'data-report-ready="1"' in body.group(0)  # the script ran to its end
    assert "data-report-error" not in body.group(0)  # and window.onerror saw nothing
    assert '<span id="row-count">16</span>' in dom  # the script ran: 2 methods x 8 images


def test_localize_writes_coco_that_pycocotools_reads(reference: Path, tmp_path: Path) -> None:
    root = _root(reference)
    images = [root / "images" / record.image_id for record in read_split(root, "test")[:3]]
    out = tmp_path / "out"
    checkpoint = str(reference / "checkpoints" / "best.ckpt")
    assert main(["localize", "--checkpoint", checkpoint, *map(str, images), "--out", str(out)]) == 0
    coco = COCO(str(out / "predictions_coco.json"))
    assert [image["file_name"] for image in coco.loadImgs(coco.getImgIds())] == [p.name for p in images]
    for number, path in enumerate(images, start=1):
        boxes = json.loads((out / f"{path.stem}_boxes.json").read_text())["all"]
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[number]))
        assert [a["bbox"] for a in annotations] == [[x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in boxes]
        prediction = json.loads((out / f"{path.stem}_prediction.json").read_text())
        mask = cv2.imread(str(out / f"{path.stem}_mask.png"), 0) > 0
        union = np.zeros_like(mask)
        for annotation in annotations:
            assert annotation["category_id"] == prediction["predicted_class"] + 1
            assert annotation["score"] == pytest.approx(max(prediction["probabilities"]))
            union |= coco_mask.decode(coco_mask.frPyObjects(annotation["segmentation"], *mask.shape)).astype(
                bool
            )
        assert np.array_equal(union, mask)  # every mask pixel lies in its contour's box
    results = coco.loadRes(coco.dataset["annotations"])
    assert len(results.getAnnIds()) == len(coco.getAnnIds())


def test_train_seeds_evaluates_each_run_and_compares(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tiny = [item for item in TINY if not item.startswith("trainer.max_epochs")]
    command = ["train", "--seeds", "3,4", *tiny, "trainer.max_epochs=1", f"output_dir={tmp_path}", "name=s"]
    assert main(command) == 0
    printed = capsys.readouterr().out
    for seed in (3, 4):
        evaluation = _metrics(tmp_path / f"s-seed{seed}" / "evaluation")
        assert evaluation["provenance"]["seed"] == seed and "val_tau" in evaluation
    assert (tmp_path / "s-seed3" / "evaluation" / "predictions" / "predictions_coco.json").is_file()
    assert not (tmp_path / "s-seed4" / "evaluation" / "predictions").exists()  # the first seed's only
    assert "| cam | 3,4 |" in printed
    assert main(["train", "--seeds", "1,x"]) == 2


def test_evaluate_trained_run_with_a_cam_writes_its_own_folder(
    reference: Path, evaluations: dict[str, Path], tmp_path: Path
) -> None:
    from wsol.cli.train import evaluate_trained_run

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    out = evaluate_trained_run(run, run / "checkpoints" / "best.ckpt", cam="gradcam")
    assert out == run / "evaluation_gradcam" and not (run / "evaluation").exists()
    metrics = _metrics(out)
    assert metrics["provenance"]["label"].endswith("+gradcam") and "val_tau" in metrics
    assert metrics["top1_err"] == _metrics(evaluations["gc"])["top1_err"]
