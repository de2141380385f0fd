"""Synthetic-benchmark table of the training-time methods: each method preset over seeds, then `wsol compare`.

    OMP_NUM_THREADS=1 python benchmarks/methods_table.py --work /tmp/methods2 [--seeds 0,1,2] [--presets a,b]

For each preset and seed runs ``wsol train --config PRESET seed=S output_dir=WORK/runs name=PRESET-sS
trainer.progress_bar=false`` (one run at a time, the presets' defaults on the default synthetic benchmark),
then evaluates ``best.ckpt`` on the test split with τ chosen on validation into ``RUN/evaluation/``
(``rcam`` also with its recombined-weights CAM into ``RUN/evaluation_recombined_cam/``). Finished runs and
evaluations are skipped and an unfinished run is resumed, so an interrupted table continues where it
stopped. Last, ``wsol compare`` of all evaluations (mean ± sd, paired bootstrap intervals) into
``WORK/compare/``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

PRESETS = ("cam_gap", "has", "acol", "spg", "adl", "cutmix", "ass", "amh", "rcam", "unet_fullsup")
EXTRA_CAMS = {"rcam": "recombined_cam"}


def wsol(*args: str) -> list[str]:
    return [sys.executable, "-m", "wsol.cli.main", *args]


def train(preset: str, seed: int, runs: Path) -> Path:
    """Train (or resume, or skip) one run; its folder."""
    run_dir = runs / f"{preset}-s{seed}"
    if (run_dir / "metrics.json").is_file():
        return run_dir
    if (run_dir / "checkpoints" / "last.ckpt").is_file():
        command = wsol("train", "--resume", str(run_dir))
    else:
        overrides = [
            f"seed={seed}",
            f"output_dir={runs}",
            f"name={preset}-s{seed}",
            "trainer.progress_bar=false",
        ]
        command = wsol("train", "--config", preset, *overrides)
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True)
    return run_dir


def evaluate(run_dir: Path, cam: str | None) -> Path:
    """Evaluate the run's selected checkpoint on test (τ from validation) unless already done."""
    from wsol.cli.train import evaluate_trained_run

    out = run_dir / ("evaluation" if cam is None else f"evaluation_{cam}")
    if not (out / "metrics.json").is_file():
        print(f"evaluate {run_dir} {cam or ''}", flush=True)
        evaluate_trained_run(run_dir, run_dir / "checkpoints" / "best.ckpt", cam=cam)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for runs/ and compare/")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated presets")
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    presets = [preset for preset in args.presets.split(",") if preset]
    evaluations = []
    for seed in seeds:
        for preset in presets:
            run_dir = train(preset, seed, args.work / "runs")
            evaluations.append(evaluate(run_dir, None))
            if preset in EXTRA_CAMS:
                evaluations.append(evaluate(run_dir, EXTRA_CAMS[preset]))
    subprocess.run(wsol("compare", *map(str, evaluations), "--out", str(args.work / "compare")), check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
