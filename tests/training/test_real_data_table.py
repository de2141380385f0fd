"""The BUSI table script's parallel schedule (``benchmarks/real_data_table.py --jobs``), with the training and
evaluation processes replaced by a fake that writes the files they would write."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "real_data_table.py"


@pytest.fixture()
def table_module(monkeypatch):
    spec = importlib.util.spec_from_file_location("real_data_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "real_data_table", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class FakeProcesses:
    """Stands in for ``run``: a training sleeps, then writes best.ckpt and metrics.json; an evaluation writes
    metrics.json. Records start/end times, the trainings' commands and the peak number running at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = self.peak = 0
        self.spans: dict[str, tuple[float, float]] = {}
        self.commands: dict[str, list[str]] = {}
        self.threads: set[int | None] = set()

    def __call__(self, command: list[str], log: Path, threads: int | None = None) -> tuple[float, float]:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.threads.add(threads)
        start = time.perf_counter()
        args = dict(arg.split("=", 1) for arg in command if "=" in arg)
        if "train" in command:
            time.sleep(0.05)
            run_dir = Path(args["output_dir"]) / args["name"]
            (run_dir / "checkpoints").mkdir(parents=True)
            (run_dir / "checkpoints" / "best.ckpt").write_text("fake")
            (run_dir / "metrics.json").write_text("{}")
            self.commands[args["name"]] = command
            self.spans[args["name"]] = (start, time.perf_counter())
        else:
            out = Path(command[command.index("--out") + 1])
            out.mkdir(parents=True)
            (out / "metrics.json").write_text(json.dumps({"pxap": 50.0, "top1_err": 10.0}))
        with self.lock:
            self.running -= 1
        return time.perf_counter() - start, 1.0


def test_parallel_table_trains_each_run_once_after_its_classifier(table_module, tmp_path, monkeypatch):
    fake = FakeProcesses()
    monkeypatch.setattr(table_module, "run", fake)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(table_module.os, "cpu_count", lambda: 2)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dataset.json").write_text("{}")
    presets = ["weight_map_lite0", "cam_gap_lite0", "wgap_lite0"]
    argv = ["src", "--work", str(tmp_path), "--jobs", "2", "--seeds", "0", "1", "--presets", *presets]
    table_module.main(argv)

    names = {f"{preset}-s{seed}" for preset in presets for seed in (0, 1)}
    assert set(fake.commands) == names  # every training ran, and only once
    assert fake.peak == 2 and fake.threads == {1}  # two at a time, one thread each on two cores
    for seed in (0, 1):
        classifier = tmp_path.resolve() / "runs" / f"cam_gap_lite0-s{seed}" / "checkpoints" / "best.ckpt"
        command = fake.commands[f"weight_map_lite0-s{seed}"]
        assert f"method.options.classifier.checkpoint={classifier}" in command
        assert fake.spans[f"weight_map_lite0-s{seed}"][0] >= fake.spans[f"cam_gap_lite0-s{seed}"][1]
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    expected = {(preset, seed) for preset in presets for seed in (0, 1)}
    cams = ("gradcam", "gradcampp", "layercam")
    expected |= {(f"wgap_lite0 + {cam}", seed) for cam in cams for seed in (0, 1)}
    expected |= {("center", None), ("all_ones", None)}
    assert {(row["row"], row["seed"]) for row in rows} == expected and len(rows) == len(expected)

    # A second call finds everything done: nothing runs again.
    fake.commands.clear()
    table_module.main(argv)
    assert fake.commands == {} and len((tmp_path / "results.jsonl").read_text().splitlines()) == len(expected)


def test_trainings_start_longest_first_and_rows_keep_the_preset_order(table_module):
    presets = ["weight_map_lite0", "cam_gap_lite0", "wgap_lite0", "minmax_entropy_lite0"]
    jobs = list(table_module.jobs(presets, [0], baselines=False))
    trainings = [job.preset for job in jobs if job.cam is None]
    # min-max (the longest) first; the weight map after the cam_gap run it trains on; post-hoc CAMs last.
    assert trainings == ["minmax_entropy_lite0", "cam_gap_lite0", "wgap_lite0", "weight_map_lite0"]
    assert [job.cam for job in jobs[len(trainings) :]] == ["gradcam", "gradcampp", "layercam"]

    # Rows completed in another order are printed in the order the presets were given, seeds ascending.
    results = [
        {"row": "wgap_lite0 + gradcam", "seed": 1, "pxap": 30.0},
        {"row": "cam_gap_lite0", "seed": 1, "pxap": 20.0},
        {"row": "wgap_lite0 + gradcam", "seed": 0, "pxap": 40.0},
        {"row": "weight_map_lite0", "seed": 0, "pxap": 10.0},
        {"row": "center", "seed": None, "pxap": 24.0},
    ]
    lines = table_module.markdown(results, table_module.row_order(presets)).splitlines()[2:]
    assert [line.split("`")[1] for line in lines] == [
        "center", "weight_map_lite0", "cam_gap_lite0", "wgap_lite0 + gradcam",
    ]  # fmt: skip
    assert lines[3].split(" | ")[1] == "0,1" and "35.0 ± 7.1" in lines[3]
