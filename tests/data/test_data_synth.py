"""The synthetic benchmark: determinism, ground-truth invariants, class evidence, cache and CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from wsol.cli import data_synth
from wsol.data import WSOLDataset, boxes_from_mask, collate, ensure_synthetic, generate_synthetic, read_parts
from wsol.data.images import read_mask
from wsol.data.synth import SynthConfig, _orbit, codebook, generate_sample, split_labels


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(tmp_path: Path, tiny_synth: Path, tiny_config: SynthConfig) -> None:
    TINY = tiny_config  # noqa: N806
    again = generate_synthetic(tmp_path / "again", TINY)
    first, second = _files(tiny_synth), _files(again)
    assert first.keys() == second.keys() and len(first) > 40
    assert all(first[name] == second[name] for name in first)
    other = _files(generate_synthetic(tmp_path / "other", SynthConfig(**{**TINY.__dict__, "seed": 4})))
    changed = [name for name in first if name.startswith("images/") and first[name] != other[name]]
    assert len(changed) == TINY.train + TINY.val + TINY.test


def test_an_image_does_not_depend_on_the_split_size(tiny_config: SynthConfig) -> None:
    TINY = tiny_config  # noqa: N806
    small, large = TINY, SynthConfig(**{**TINY.__dict__, "test": 40})
    labels_small, labels_large = split_labels(small, "test"), split_labels(large, "test")
    index = 2
    a = generate_sample(small, "test", index, int(labels_large[index]))
    b = generate_sample(large, "test", index)
    assert np.array_equal(a.image, b.image) and a.label == int(labels_large[index])
    assert np.bincount(labels_small, minlength=4).tolist() == [1, 1, 1, 1]  # balanced


def _decode_glyph(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Read the 4 x 4 pattern of a natural-preset glyph (1-px paper frame, ink cells darker than paper)."""
    x0, y0, x1, y1 = box
    cell = (x1 - x0 - 2) // 4
    grey = image.astype(np.float32).mean(2)[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1]
    means = grey.reshape(4, cell, 4, cell).mean((1, 3))
    return (means < (means.max() + means.min()) / 2).astype(np.uint8)


def _which(pattern: np.ndarray, patterns: tuple[np.ndarray, ...]) -> int | None:
    for index, candidate in enumerate(patterns):
        if any(np.array_equal(pattern, member) for member in _orbit(candidate)):
            return index
    return None


@pytest.mark.parametrize("preset", ["natural", "natural-multi", "histology"])
def test_ground_truth_invariants(preset: str) -> None:
    config = SynthConfig(preset=preset, image_size=96, train=24)
    classes, distractors = codebook()
    fractions = []
    for index in range(config.train):
        sample = generate_sample(config, "train", index)
        ids = np.unique(sample.instances)
        assert ids.tolist() == list(range(len(sample.boxes) + 1))  # 0 + instances 1..n
        lo, hi = config.instances
        assert lo <= len(sample.boxes) <= hi
        # boxes are the tight boxes of the instance masks
        assert np.array_equal(np.asarray(sample.boxes, np.float32), boxes_from_mask(sample.instances))
        foreground = sample.instances > 0
        fractions.append(foreground.mean())
        kinds = [kind for kind, _ in sample.parts]
        assert kinds.count("part") == len(sample.boxes)  # one class-evidence glyph per object
        for kind, (x0, y0, x1, y1) in sample.parts:
            region = sample.instances[y0:y1, x0:x1]
            if kind == "part":  # the evidence lies entirely inside one object
                assert region.size > 0 and (region > 0).all() and len(np.unique(region)) == 1
            else:  # distractors lie entirely in the background
                assert not (region > 0).any()
            if preset != "histology" and kind != "fragment":
                pattern = _decode_glyph(sample.image, (x0, y0, x1, y1))
                if kind == "part":
                    assert _which(pattern, classes) == sample.label
                else:  # no class signal: a distractor is never a class pattern
                    assert _which(pattern, classes) is None and _which(pattern, distractors) is not None
    assert 0.03 <= min(fractions) and max(fractions) <= 0.65
    assert max(fractions) > 3 * min(fractions)  # sizes vary widely


def test_codebook_is_rotation_invariant_and_separated() -> None:
    classes, distractors = codebook()
    assert len(classes) == 16 and len(distractors) == 4
    orbits = [_orbit(p) for p in classes + distractors]
    for i, a in enumerate(orbits):
        for b in orbits[i + 1 :]:
            assert min(int(np.abs(x.astype(int) - y).sum()) for x in a for y in b) >= 4
    # ink density carries no class signal: 6 to 8 of 16 cells on in every pattern
    assert {int(p.sum()) for p in classes + distractors} <= {6, 7, 8}


def test_body_evidence_follows_the_class_band() -> None:
    config = SynthConfig(image_size=96, train=12, body_evidence=1.0)
    low, high = 4.0, 10.0
    width = (high - low) / config.num_classes
    for index in range(config.train):
        sample = generate_sample(config, "train", index)
        for period in sample.body_periods:
            assert low + width * sample.label <= period <= low + width * (sample.label + 1)


def test_round_trip_dataset_loads_masks_and_boxes(tiny_synth: Path, tiny_config: SynthConfig) -> None:
    TINY = tiny_config  # noqa: N806
    parts = read_parts(tiny_synth, "val")
    for split, count in (("train", TINY.train), ("val", TINY.val), ("test", TINY.test)):
        dataset = WSOLDataset(tiny_synth, split)
        assert len(dataset) == count and dataset.num_classes == 4
        for index in range(len(dataset)):
            sample = dataset[index]
            assert sample["has_mask"] and sample["image"].shape == (3, 64, 64)
            instances = read_mask(tiny_synth / "masks" / sample["image_id"])
            assert np.array_equal(sample["mask"][0].numpy() > 0, instances > 0)
            assert np.array_equal(sample["boxes"].numpy(), boxes_from_mask(instances))
    batch = collate([WSOLDataset(tiny_synth, "val")[i] for i in range(2)])
    assert batch["mask"].shape == (2, 1, 64, 64) and batch["orig_size"].tolist() == [[64, 64], [64, 64]]
    assert {kind for items in parts.values() for kind, _ in items} >= {"part", "distractor"}
    info = json.loads((tiny_synth / "dataset.json").read_text())
    assert info["extra"]["config"]["seed"] == TINY.seed and info["splits"] == ["train", "val", "test"]


def test_ensure_synthetic_generates_once(tmp_path: Path) -> None:
    kwargs = {"preset": "histology", "image_size": 64, "train": 4, "val": 2, "test": 2}
    root = ensure_synthetic(tmp_path, **kwargs)
    stamp = (root / "dataset.json").stat().st_mtime_ns
    assert ensure_synthetic(tmp_path, **kwargs) == root
    assert (root / "dataset.json").stat().st_mtime_ns == stamp  # not regenerated
    other = ensure_synthetic(tmp_path, **{**kwargs, "seed": 1})
    assert other != root and other.parent == tmp_path
    assert WSOLDataset(root, "test").info.class_names == ["benign", "malignant"]
    with pytest.raises(TypeError, match=r"unknown options \['colour'\]"):
        ensure_synthetic(tmp_path, colour="red")


def test_ensure_synthetic_default_cache_is_the_environment_folder(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WSOL_CACHE_DIR", str(tmp_path / "cache"))
    root = ensure_synthetic(image_size=32, train=2, val=2, test=2)
    assert root.parent == tmp_path / "cache"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"preset": "satellite"}, "synthetic preset 'satellite' is unknown"),
        ({"num_classes": 40}, r"num_classes: expected 2\.\.\d+, got 40"),
        ({"val": 0}, "val: every split needs at least one image"),
        ({"object_area": (0.5, 0.2)}, "object_area: expected"),
        ({"image_size": 16}, "image_size: expected 32..1024"),
        ({"preset": "histology", "image_size": 32}, r"instances: expected 1 <= min <= max <= 1 at 32 px"),
    ],
)
def test_config_errors(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SynthConfig(**values)


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="wsol data")
    data_synth.register(parser.add_subparsers(dest="data_command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_writes_a_dataset_and_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli"
    argv = ["synth", "--out", str(out), "--preset", "natural-multi", "--image-size", "64"]
    argv += ["--train", "3", "--val", "2", "--test", "2", "--num-classes", "3", "--instances", "2", "3"]
    assert _cli(argv) == 0
    assert "3 classes, 64 px, train/val/test 3/2/2" in capsys.readouterr().out
    batch = collate([WSOLDataset(out, "train")[i] for i in range(3)])
    assert batch["has_mask"].all() and all(len(boxes) >= 2 for boxes in batch["boxes"])
    assert _cli(argv) == 2
    assert (
        "holds the dataset 'synthetic-natural-multi'; pass --force to replace it" in capsys.readouterr().err
    )
    assert _cli([*argv, "--force", "--seed", "5"]) == 0


def test_generate_synthetic_takes_keyword_options(tmp_path: Path) -> None:
    options = {"preset": "histology", "image_size": 64, "train": 2, "val": 1, "test": 1, "seed": 9}
    root = generate_synthetic(tmp_path / "kw", **options)
    assert json.loads((root / "dataset.json").read_text())["extra"]["config"]["seed"] == 9
    with pytest.raises(TypeError, match="not both"):
        generate_synthetic(tmp_path / "x", SynthConfig(), seed=1)
