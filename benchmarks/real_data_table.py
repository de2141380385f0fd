"""The BUSI results table: every ``*_lite0`` real-data preset over seeds, plus ``all_ones`` and ``center``.

    python benchmarks/real_data_table.py PATH/TO/Dataset_BUSI_with_GT --work /tmp/busi_table --jobs 2

Imports BUSI into ``WORK/data`` (``wsol data import busi``; reused when already there), then for each seed and
preset runs ``wsol train --config <preset> data.root=WORK/data`` (``--jobs`` runs at a time, one thread each
on a 2-core machine with ``--jobs 2``) and ``wsol evaluate --checkpoint best.ckpt --split test``;
``weight_map_lite0``, ``fcam_lite0`` and ``negev_lite0`` use the ``cam_gap_lite0`` checkpoint of the same seed
as their frozen classifier; Grad-CAM / Grad-CAM++ / LayerCAM are evaluated post hoc on the ``wgap_lite0``
checkpoint and the recombined CAM on ``rcam_lite0``'s. Each finished result is appended to
``WORK/results.jsonl``, so an interrupted run resumes where it stopped; ``--table-only`` prints the table from
what is there. The table (Markdown, mean ± sd over the seeds run, n per row) has the test split's
classification error, PxAP, F1⁺ / F1⁻ (τ = 0.5), MaxBoxAccV2, GT-known loc (MaxBoxAcc at IoU 50) and the
training time (wall and CPU seconds of the ``wsol train`` process and its loader workers).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

PRESETS = (
    "cam_gap_lite0",
    "wgap_lite0",
    "wildcat_lite0",
    "minmax_entropy_lite0",
    "minmax_entropy_no_erasing_lite0",
    "maxmin_uncertainty_sem_lite0",
    "weight_map_lite0",
)
"""The default rows: those of the real-data issue and WILDCAT, min-max entropy's pooling head alone."""
METHOD_PRESETS = (
    "fcam_lite0", "negev_lite0", "has_lite0", "acol_lite0", "spg_lite0", "adl_lite0",
    "cutmix_lite0", "ass_lite0", "amh_lite0", "rcam_lite0", "unet_fullsup_lite0",
)  # fmt: skip
"""F-CAM, NEGEV, the training-time methods of docs/methods.md and the fully supervised upper bound: rows of
the table when named with ``--presets``."""
CPU_S = {
    "minmax_entropy_lite0": 900, "minmax_entropy_no_erasing_lite0": 600, "maxmin_uncertainty_sem_lite0": 500,
    "acol_lite0": 580, "spg_lite0": 500, "weight_map_lite0": 450, "unet_fullsup_lite0": 420,
}  # fmt: skip
"""Rough single-thread CPU seconds of one BUSI training (350 for the presets not named): the trainings start
longest first so that two workers finish together."""
# Second runs over the frozen cam_gap_lite0 classifier of the same seed.
ON_CAM_GAP = {
    "weight_map_lite0": "classifier.checkpoint",
    "fcam_lite0": "classifier_checkpoint",
    "negev_lite0": "classifier_checkpoint",
}
"""Second runs over the same seed's ``cam_gap_lite0`` checkpoint, and the option that names it."""
POST_HOC = {"wgap_lite0": ("gradcam", "gradcampp", "layercam"), "rcam_lite0": ("recombined_cam",)}
COLUMNS = (
    ("cls. error %", "top1_err"),
    ("PxAP", "pxap"),
    ("F1⁺", "f1_pos"),
    ("F1⁻", "f1_neg"),
    ("MaxBoxAccV2", "max_box_acc_v2"),
    ("GT-known loc", "gt_known_loc"),
    ("train wall s", "train_wall_s"),
    ("train CPU s", "train_cpu_s"),
)


@dataclass(frozen=True)
class Job:
    """One row entry: ``row`` is the table row, ``preset`` the training run it needs (None: a baseline)."""

    row: str
    seed: int | None
    preset: str | None = None
    cam: str | None = None


def wsol(*args: str) -> list[str]:
    return [sys.executable, "-m", "wsol.cli.main", *args]


def run(command: list[str], log: Path, threads: int | None = None) -> tuple[float, float]:
    """Run ``command`` with its output in ``log`` (``threads``: its OMP_NUM_THREADS); (wall s, CPU s of it
    and the children it waited for, from ``wait4`` so that runs in parallel threads do not mix).
    """
    env = None if threads is None else {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(command)} exited with {code}; see {log}")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def jobs(presets: list[str], seeds: list[int], baselines: bool) -> Iterator[Job]:
    """Baselines, then one row per training, longest first (``CPU_S``; ``cam_gap_lite0`` before the
    presets that train on its checkpoint), then the post-hoc CAM rows: parallel workers then rarely wait for
    a training that another one is running, and finish together.
    """
    if baselines:
        yield from (Job(name, None) for name in ("center", "all_ones"))
    ordered = sorted(presets, key=lambda name: (name in ON_CAM_GAP, -CPU_S.get(name, 350)))
    yield from (Job(preset, seed, preset) for preset in ordered for seed in seeds)
    yield from post_hoc(presets, seeds)


def post_hoc(presets: list[str], seeds: list[int]) -> Iterator[Job]:
    for preset in presets:
        for seed in seeds:
            yield from (Job(f"{preset} + {cam}", seed, preset, cam) for cam in POST_HOC.get(preset, ()))


def row_order(presets: list[str]) -> list[str]:
    """The table's rows: baselines, then each preset in the order given followed by its post-hoc CAMs."""
    rows = ["center", "all_ones"]
    for preset in presets:
        rows += [preset, *(f"{preset} + {cam}" for cam in POST_HOC.get(preset, ()))]
    return rows


class Table:
    """Trains and evaluates the jobs under ``work``, recording results in ``work/results.jsonl``."""

    def __init__(
        self, work: Path, data: Path, frame: int, overrides: list[str], threads: int | None = None
    ) -> None:
        self.work, self.data, self.frame, self.overrides, self.threads = work, data, frame, overrides, threads
        self.results_path = work / "results.jsonl"
        self.lock = threading.Lock()
        self.training_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)

    def results(self) -> list[dict]:
        if not self.results_path.exists():
            return []
        return [json.loads(line) for line in self.results_path.read_text().splitlines() if line.strip()]

    def done(self, job: Job) -> bool:
        return any(r["row"] == job.row and r["seed"] == job.seed for r in self.results())

    def checkpoint(self, preset: str, seed: int) -> Path:
        """Train ``preset`` with ``seed`` unless its run has finished (``metrics.json``); an interrupted run
        is continued with ``--resume`` (its train time then counts the resumed part only). Returns the
        kept checkpoint.
        """
        name = f"{preset}-s{seed}"
        with self.lock:
            training_lock = self.training_locks[name]
        with training_lock:  # one training per run, however many jobs need it
            return self.train(preset, seed, name)

    def train(self, preset: str, seed: int, name: str) -> Path:
        run_dir = self.work / "runs" / name
        best = run_dir / "checkpoints" / "best.ckpt"
        if (run_dir / "metrics.json").exists():
            return best
        extra = []
        if preset in ON_CAM_GAP:
            key = ON_CAM_GAP[preset]
            extra = [f"method.options.{key}={self.checkpoint('cam_gap_lite0', seed)}"]
        if (run_dir / "checkpoints" / "last.ckpt").exists():
            command = wsol("train", "--resume", str(run_dir))
        else:
            command = wsol(
                "train", "--config", preset, f"data.root={self.data}", f"seed={seed}", f"name={name}",
                f"output_dir={self.work / 'runs'}", "trainer.progress_bar=false", *extra, *self.overrides,
            )  # fmt: skip
        wall, cpu = run(command, self.work / f"train-{name}.log", self.threads)
        (best.parent / "train_time.json").write_text(json.dumps({"wall_s": wall, "cpu_s": cpu}))
        return best

    def evaluate(self, job: Job) -> dict:
        label = job.row.replace(" + ", "-") + ("" if job.seed is None else f"-s{job.seed}")
        out = self.work / "eval" / label
        timing: dict = {}
        if job.preset is None:
            source = ["--baseline", job.row, "--frame-size", str(self.frame)]
        else:
            best = self.checkpoint(job.preset, job.seed)
            source = ["--checkpoint", str(best), *(["--cam", job.cam] if job.cam else [])]
            timing = json.loads((best.parent / "train_time.json").read_text())
        command = wsol(
            "evaluate", *source, "--data", str(self.data), "--split", "test", "--out", str(out),
            "--label", job.row,
        )  # fmt: skip
        run(command, self.work / f"eval-{label}.log", self.threads)
        metrics = json.loads((out / "metrics.json").read_text())
        row = {key: metrics.get(key) for _, key in COLUMNS}
        row.update(train_wall_s=timing.get("wall_s"), train_cpu_s=timing.get("cpu_s"))
        return {"row": job.row, "seed": job.seed, **row}

    def record(self, result: dict) -> None:
        with self.lock, self.results_path.open("a") as out:
            out.write(json.dumps(result) + "\n")

    def complete(self, job: Job) -> None:
        """Evaluate ``job`` (training what it needs), record it and print the table so far."""
        self.record(self.evaluate(job))
        with self.lock:
            print(markdown(self.results()), flush=True)


def cell(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def markdown(results: list[dict], order: list[str] | None = None) -> str:
    """Mean ± sd (sample sd, n − 1) over the seeds of each row, rows in ``order`` (first-seen after it)."""
    rows: dict[str, list[dict]] = {}
    for result in sorted(results, key=lambda r: r["seed"] if r["seed"] is not None else -1):
        rows.setdefault(result["row"], []).append(result)
    rank = {row: i for i, row in enumerate(order or [])}
    rows = dict(sorted(rows.items(), key=lambda item: rank.get(item[0], len(rank))))
    header = ["method", "seeds", *(title for title, _ in COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, entries in rows.items():
        seeds = ",".join(str(e["seed"]) for e in entries if e["seed"] is not None) or "–"
        cells = [cell([e[key] for e in entries if e.get(key) is not None]) for _, key in COLUMNS]
        lines.append("| " + " | ".join([f"`{row}`", seeds, *cells]) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("src", type=Path, help="the official Dataset_BUSI_with_GT folder")
    parser.add_argument("--work", type=Path, default=Path("busi_table"), help="imported data, runs, results")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS + METHOD_PRESETS)
    parser.add_argument("--no-baselines", action="store_true", help="leave out all_ones and center")
    parser.add_argument(
        "--frame", type=int, default=160, help="the baselines' frame (the presets' frame_size)"
    )
    parser.add_argument("--table-only", action="store_true", help="print the table of WORK/results.jsonl")
    parser.add_argument(
        "--jobs", type=int, default=1,
        help="runs at a time (each with OMP_NUM_THREADS = cores // jobs unless OMP_NUM_THREADS is set)",
    )  # fmt: skip
    parser.add_argument("overrides", nargs="*", default=[], help="config overrides for every wsol train run")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    data = args.work / "data"
    threads = None
    if args.jobs > 1 and "OMP_NUM_THREADS" not in os.environ:
        threads = max(1, (os.cpu_count() or 1) // args.jobs)
    table = Table(args.work.resolve(), data.resolve(), args.frame, args.overrides, threads)
    if not args.table_only:
        if not (data / "dataset.json").exists():
            run(
                wsol("data", "import", "busi", "--src", str(args.src), "--out", str(data)),
                args.work / "import.log",
            )
        todo = [job for job in jobs(args.presets, args.seeds, not args.no_baselines) if not table.done(job)]
        # First in, first started: a job waits only for a training already running in another worker.
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for future in [pool.submit(table.complete, job) for job in todo]:
                future.result()
    print(f"jobs: {args.jobs}; threads per run: {threads or os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(markdown(table.results(), row_order(args.presets)))


if __name__ == "__main__":
    main()
