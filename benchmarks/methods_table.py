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
import json
import subprocess
import sys
from pathlib import Path

PRESETS = ("cam_gap", "has", "acol", "spg", "adl", "cutmix", "ass", "amh", "rcam", "unet_fullsup")
EXTRA_CAMS = {"rcam": "recombined_cam"}
BASELINE = "cam/gap"
# (title, compare.json key, with the oracle-τ figure in parentheses)
COLUMNS = (
    ("error %", "top1_err", False),
    ("PxAP", "pxap", False),
    ("F1⁺ % val τ", "f1_pos_best", False),
    ("F1⁻ % val τ", "f1_neg_best", False),
    ("MaxBoxAccV2 val τ (oracle)", "max_box_acc_v2", True),
    ("GT-known loc % val τ (oracle)", "gt_known_loc", True),
)


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


def _cell(figures: dict, oracle: bool) -> str:
    value = figures["value"]
    text = f"{value['mean']:.1f}" + (f" ± {value['sd']:.1f}" if value["sd"] is not None else "")
    return text + (f" ({figures['oracle']['mean']:.1f})" if oracle else "")


def summary(document: dict) -> str:
    """The short table (mean ± sd over seeds) and each method's paired difference to CAM-Avg."""
    lines = [
        "| method | seeds | " + " | ".join(title for title, _, _ in COLUMNS) + " |",
        "|---|---|" + "---|" * len(COLUMNS),
    ]
    for method in document["methods"]:
        cells = [_cell(method["metrics"][key], oracle) for _, key, oracle in COLUMNS]
        seeds = ",".join(map(str, method["seeds"]))
        lines.append(f"| {method['label']} | {seeds} | " + " | ".join(cells) + " |")
    lines += ["", f"| method − {BASELINE} | PxAP | MaxBoxAccV2 val τ | error % |", "|---|---|---|---|"]
    for pair in document["paired"]:
        if BASELINE not in (pair["a"], pair["b"]):
            continue
        sign, other = (1, pair["a"]) if pair["b"] == BASELINE else (-1, pair["b"])
        cells = []
        for key in ("pxap", "max_box_acc_v2", "top1_err"):
            d = pair["metrics"][key]
            low, high = sorted((sign * d["low"], sign * d["high"]))
            cells.append(f"{sign * d['difference']:+.1f} [{low:+.1f}, {high:+.1f}]")
        lines.append(f"| {other} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for runs/ and compare/")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated presets")
    parser.add_argument("--no-compare", action="store_true", help="train and evaluate only")
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
    if args.no_compare:
        return 0
    compare = args.work / "compare"
    subprocess.run(wsol("compare", *map(str, evaluations), "--out", str(compare)), check=True)
    print(summary(json.loads((compare / "compare.json").read_text(encoding="utf-8"))), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
