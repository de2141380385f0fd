"""Metric families: a family added by one registry line is computed, merged and synchronised; every family's
state adds up (two half evaluators merged equal one evaluator over all images)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from wsol.evaluation import EvaluatorConfig, WSOLEvaluator
from wsol.evaluation.batch import BatchInputs, PreparedBatch, prepare_batch
from wsol.evaluation.config import Grid
from wsol.evaluation.families import FAMILIES
from wsol.evaluation.family import FamilyResult, MetricFamily, State

STEP = 0.05
CONFIG = EvaluatorConfig(cam_curve_interval=STEP, weightmap_score=True)


class MeanPeak(MetricFamily):
    """A toy family: the mean over images of each raw map's maximum."""

    def init_state(self) -> State:
        return {"images": np.zeros(()), "peak_sum": np.zeros(())}

    def update(self, state: State, batch: PreparedBatch) -> None:
        state["images"] += len(batch.raw)
        state["peak_sum"] += batch.raw.reshape(len(batch.raw), -1).max(axis=1).sum()

    def compute(self, state: State) -> FamilyResult:
        count = int(state["images"])
        return FamilyResult({"mean_peak": float(state["peak_sum"] / count)} if count else {})


def _register_toy() -> None:
    FAMILIES._entries["mean_peak"] = f"{__name__}:MeanPeak"  # the one registry line a new family adds


@pytest.fixture
def toy_family(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(FAMILIES._entries, "mean_peak", f"{__name__}:MeanPeak")


def _peaked_maps(peaks: list[float]) -> np.ndarray:
    maps = np.zeros((len(peaks), 8, 8))
    for i, peak in enumerate(peaks):
        maps[i, 2 + i % 4, 3] = peak
    return maps


def _batch(seed: int, n: int = 4, size: int = 24) -> dict:
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((n, 1, 4, 4)))
    maps = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    boxes = [torch.tensor([[2.0, 3.0, 2.0 + 4 + i, 3.0 + 6]]) for i in range(n)]
    boxes[-1] = torch.zeros((0, 4))  # an image without a box
    has_object = torch.ones(n, dtype=torch.bool)
    has_object[0] = False
    return {
        "maps": maps[:, 0],
        "masks": (maps[:, 0] > 0.55).float(),
        "boxes": boxes,
        "labels": torch.from_numpy(rng.integers(0, 6, n)),
        "logits": torch.from_numpy(rng.standard_normal((n, 6))),
        "has_object": has_object,
    }


def _update(evaluator: WSOLEvaluator, batch: dict) -> None:
    evaluator.update(
        batch["maps"],
        masks=batch["masks"],
        boxes=batch["boxes"],
        labels=batch["labels"],
        logits=batch["logits"],
        has_object=batch["has_object"],
    )


def test_a_family_of_one_registry_line_is_computed(toy_family: None) -> None:
    evaluator = WSOLEvaluator(CONFIG)
    evaluator.update(_peaked_maps([1.0, 2.0]))
    evaluator.update(_peaked_maps([3.0, 6.0]))
    result = evaluator.compute()
    assert result.extra == {"mean_peak": 3.0}  # (1 + 2 + 3 + 6) / 4
    assert result.to_dict()["mean_peak"] == 3.0 and "extra" not in result.to_dict()
    assert {"mean_peak.images", "mean_peak.peak_sum"} <= set(evaluator.stats)


def test_a_family_of_one_registry_line_is_merged(toy_family: None) -> None:
    first, second = WSOLEvaluator(CONFIG), WSOLEvaluator(CONFIG)
    first.update(_peaked_maps([1.0, 2.0]))
    second.update(_peaked_maps([6.0]))
    assert first.merge(second).compute().extra == {"mean_peak": 3.0}


def test_families_run_in_registry_order_and_only_when_enabled() -> None:
    assert list(FAMILIES) == ["images", "classification", "box", "pixel", "weightmap_score"]
    without_s = WSOLEvaluator(EvaluatorConfig(cam_curve_interval=STEP))
    assert not any(name.startswith("weightmap_score.") for name in without_s.stats)
    assert any(name.startswith("weightmap_score.") for name in WSOLEvaluator(CONFIG).stats)


def test_merging_two_halves_equals_one_evaluator_for_every_family(assert_nested_close) -> None:
    batches = [_batch(seed) for seed in range(4)]
    whole, first, second = WSOLEvaluator(CONFIG), WSOLEvaluator(CONFIG), WSOLEvaluator(CONFIG)
    for i, batch in enumerate(batches):
        _update(whole, batch)
        _update(first if i % 2 else second, batch)
    merged = first.merge(second)
    assert merged.stats.keys() == whole.stats.keys()
    families = {name.split(".")[0] for name in whole.stats}
    assert families == {"images", "classification", "box", "pixel", "weightmap_score"}
    for name, value in whole.stats.items():
        np.testing.assert_allclose(merged.stats[name], value, rtol=1e-12, atol=1e-12, err_msg=name)
    expected = whole.compute().to_dict()
    assert expected["num_images"] == 16 and expected["num_no_object_images"] == 4
    assert expected["num_box_images"] == 8 and expected["num_classified"] == 16
    assert expected["s_score"] is not None and expected["pxap"] is not None
    # sums in another order: equal to rounding
    assert_nested_close(merged.compute().to_dict(), expected, rel=1e-12, abs=1e-12)


def _prepared(seed: int) -> PreparedBatch:
    batch = _batch(seed)
    inputs = BatchInputs(
        masks=batch["masks"],
        boxes=batch["boxes"],
        labels=batch["labels"],
        logits=batch["logits"],
        has_object=batch["has_object"],
    )
    return prepare_batch(CONFIG, batch["maps"], inputs)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_contract_named_float64_sums(name: str) -> None:
    """Every registered family: float64 named state, zero state computes, updates add up entry by entry."""
    family = FAMILIES[name](Grid.from_config(CONFIG))
    assert family.enabled(CONFIG)
    empty = family.init_state()
    assert empty and all(v.dtype == np.float64 and not v.any() for v in empty.values())
    assert isinstance(family.compute(empty), FamilyResult)
    first, second, both = family.init_state(), family.init_state(), family.init_state()
    family.update(first, _prepared(0))
    family.update(second, _prepared(1))
    family.update(both, _prepared(0))
    family.update(both, _prepared(1))
    assert both.keys() == empty.keys() and any(v.any() for v in both.values())
    for key, value in both.items():
        assert value.shape == empty[key].shape, key
        np.testing.assert_allclose(value, first[key] + second[key], rtol=1e-12, err_msg=key)
    family.close()


def test_merge_rejects_another_configuration() -> None:
    with pytest.raises(ValueError, match="configurations differ"):
        WSOLEvaluator(CONFIG).merge(WSOLEvaluator(EvaluatorConfig(cam_curve_interval=STEP)))


def _ddp_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    _register_toy()  # a spawned process imports the registry afresh
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        evaluator = WSOLEvaluator(CONFIG)
        evaluator.update(_peaked_maps([1.0, 2.0] if rank == 0 else [9.0]))
        _update(evaluator, _batch(rank))
        evaluator.sync_distributed()
        Path(out_dir, f"rank{rank}.json").write_text(
            json.dumps(evaluator.compute().to_dict(), sort_keys=True)
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_sync_distributed_sums_every_family_including_a_new_one(
    toy_family: None, tmp_path: Path, assert_nested_close
) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    single = WSOLEvaluator(CONFIG)
    single.update(_peaked_maps([1.0, 2.0, 9.0]))
    for rank in range(2):
        _update(single, _batch(rank))
    expected = json.loads(json.dumps(single.compute().to_dict(), sort_keys=True))
    peaks = [1.0, 2.0, 9.0] + [float(_batch(r)["maps"].amax(dim=(1, 2)).sum()) for r in range(2)]
    assert expected["mean_peak"] == pytest.approx(sum(peaks) / 11)
    for rank in range(2):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got["num_images"] == 11
        assert_nested_close(got, expected, rel=1e-12, abs=1e-12)
