"""Check the learned-weight-map claims (Shaharabany & Wolf, arXiv 2111.14131) on the synthetic benchmark;
print the claims table.

1. Without R (λ = 0), g drifts towards covering most of the image (the paper's Fig. 8).
2. The epoch chosen by the maximal mean score S on the validation split (Eq. 6, no pixel labels) localizes
   better than the last epoch (the early-stopping claim). S with the full-frame guard (the library
   default, ``wsol.evaluation.weightmap_s_score``) and the paper-exact S each select an epoch; every val
   image's paper S and box fraction are kept in the JSON so that other guards can be re-scored without
   training.
3. Method I's PxAP against CAM-Avg's on the same frozen classifier.

One CAM-Avg classifier (``tiny`` backbone + GAP head) is trained once, then g (``--encoder``, ``tiny`` by
default; ``--g-weights imagenet`` for a pretrained encoder) is trained with and without R (``--no-ablation``:
with R only). After each epoch: mean S on val, and on test PxAP, GT-known loc and top-1 loc with the
paper's box rule (largest contour at τ = max/10, IoU >= 0.5) and the map's mean value. Small enough for a
shared CPU::

    .venv/bin/python benchmarks/claims_weight_map.py --out results/weight_map_claims.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from wsol.data.dataset import WSOLDataset, collate
from wsol.data.synth import ensure_synthetic
from wsol.data.transforms import TransformConfig, build_transforms
from wsol.evaluation.boxes import iou_matrix
from wsol.evaluation.pixel import bin_edges, image_histograms, pxap
from wsol.evaluation.weightmap_score import box_fraction, box_from_map_weightmap, weightmap_s_score
from wsol.io import atomic_write_bytes, atomic_write_text
from wsol.methods import WSOLMethod, build_method
from wsol.methods.weight_map import FrozenClassifier, WeightMapMethod

PXAP_THRESHOLDS = np.arange(0.0, 1.0, 0.01)
"""Note A.6: the authors' MaskEvaluator thresholds."""


def _loader(dataset: WSOLDataset, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(seed),
    )


def _fit_epoch(method: WSOLMethod, loader: DataLoader, optimizer: torch.optim.Optimizer) -> float:
    method.train()
    losses = []
    for batch in loader:
        optimizer.zero_grad(set_to_none=True)
        terms = method.training_step(batch, lambda loss: loss.backward())
        optimizer.step()
        losses.append(float(terms["loss"]))
    return float(np.mean(losses))


@torch.no_grad()
def _evaluate(method: WSOLMethod, batches: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Mean S (guarded and paper-exact), PxAP (%), GT-known / top-1 loc (%) with the paper's box rule, top-1
    cls (%), mean map value; per image the paper S and the box's fraction of the map."""
    method.eval()
    edges = bin_edges(PXAP_THRESHOLDS)
    positive = np.zeros(len(edges) - 1)
    negative = np.zeros_like(positive)
    scores, guarded, fractions, hits, top1_hits, correct, means = [], [], [], [], [], [], []
    for batch in batches:
        labels: Tensor = batch["label"]
        prediction = method.predict(batch["image"], classes=labels)
        maps = prediction.maps.float()
        right = prediction.logits.argmax(dim=1) == labels
        valid = ~batch["ignore"][:, 0].flatten(1)
        fg = batch["mask"][:, 0].flatten(1) > 0.5
        pos, neg, _ = image_histograms(maps.flatten(1), fg & valid, ~fg & valid, edges)
        positive += pos.sum(0)
        negative += neg.sum(0)
        for i, weight_map in enumerate(maps):
            box, score = box_from_map_weightmap(weight_map)
            # The paper's box is [x, y, x + w, y + h); the IoU uses inclusive ends (the +1 convention).
            inclusive = np.array([[box[0], box[1], box[2] - 1, box[3] - 1]])
            hit = bool(iou_matrix(inclusive, batch["boxes"][i].numpy()).max() >= 0.5)
            scores.append(score)
            guarded.append(weightmap_s_score(weight_map))
            fractions.append(box_fraction(box, weight_map.shape))
            hits.append(hit)
            top1_hits.append(hit and bool(right[i]))
            correct.append(bool(right[i]))
            means.append(float(weight_map.mean()))
    return {
        "s_score": float(np.mean(guarded)),
        "s_score_paper": float(np.mean(scores)),
        "s_images": scores,
        "box_fractions": fractions,
        "pxap": pxap(positive, negative)[0],
        "gt_known_loc": 100.0 * float(np.mean(hits)),
        "top1_loc": 100.0 * float(np.mean(top1_hits)),
        "top1_cls": 100.0 * float(np.mean(correct)),
        "map_mean": float(np.mean(means)),
    }


def _train_generator(
    name: str,
    method: WeightMapMethod,
    train_set: WSOLDataset,
    loader: DataLoader,
    val: list[dict[str, Any]],
    test: list[dict[str, Any]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Train g for ``args.g_epochs``; per epoch the mean val S and the test metrics; select on max val S.

    Every run starts from the same seed and data order, whether f was trained in this process or loaded.
    """
    torch.manual_seed(args.seed)
    loader.generator.manual_seed(args.seed)
    optimizer = torch.optim.Adam(
        [p for g in method.parameter_groups(args.g_lr) for p in g["params"]], args.g_lr
    )
    curve = []
    for epoch in range(args.g_epochs):
        train_set.set_epoch(epoch)
        loss = _fit_epoch(method, loader, optimizer)
        on_val = _evaluate(method, val)
        on_test = {k: v for k, v in _evaluate(method, test).items() if not isinstance(v, list)}
        row = {
            "epoch": epoch,
            "loss": loss,
            "val_s": on_val["s_score"],
            "val_s_paper": on_val["s_score_paper"],
        }
        row |= on_test | {"val_s_images": on_val["s_images"], "val_box_fractions": on_val["box_fractions"]}
        curve.append(row)
        shown = ", ".join(f"{k}={v:.3f}" for k, v in row.items() if k != "epoch" and not isinstance(v, list))
        print(f"{name} epoch {epoch}: {shown}", flush=True)
    return {
        "curve": curve,
        "selected_epoch": _max_epoch(curve, "val_s"),
        "selected_epoch_paper": _max_epoch(curve, "val_s_paper"),
    }


def _max_epoch(curve: list[dict[str, Any]], key: str) -> int:
    """The epoch of maximal ``key``; ties keep the earliest, as the engine's ModelCheckpoint."""
    return max(range(len(curve)), key=lambda i: (curve[i][key], -i))


def _cached(loader: DataLoader) -> list[dict[str, Any]]:
    return list(loader)


def _classifier(
    args: argparse.Namespace, num_classes: int, train_set: WSOLDataset, loader: DataLoader
) -> WSOLMethod:
    """The CAM-Avg classifier: loaded from ``--classifier`` when it exists, else trained (and saved there)."""
    classifier = build_method("cam", num_classes, {"backbone": "tiny", "head": "gap"})
    if args.classifier is not None and args.classifier.is_file():
        classifier.load_state_dict(torch.load(args.classifier, map_location="cpu", weights_only=True))
        return classifier
    # src/wsol/configs/cam_gap.yaml's recipe: SGD + Nesterov, lr / 10 after 2/3 of the epochs.
    optimizer = torch.optim.SGD(
        classifier.parameters(), lr=args.cls_lr, momentum=0.9, nesterov=True, weight_decay=1e-4
    )
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, 2 * args.cls_epochs // 3))
    for epoch in range(args.cls_epochs):
        train_set.set_epoch(epoch)
        _fit_epoch(classifier, loader, optimizer)
        schedule.step()
    if args.classifier is not None:
        args.classifier.parent.mkdir(parents=True, exist_ok=True)
        torch.save(classifier.state_dict(), args.classifier)
    return classifier


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    root = ensure_synthetic(
        args.cache_dir,
        preset="natural",
        image_size=args.image_size,
        train=args.train,
        val=args.val,
        test=args.test,
        seed=args.seed,
        object_area=tuple(args.object_area),
        body_evidence=args.body_evidence,
    )
    transforms = TransformConfig.from_dict({"preset": "synthetic", "crop_size": args.image_size})
    train_set = WSOLDataset(root, "train", build_transforms(transforms, train=True), seed=args.seed)
    num_classes = train_set.num_classes
    val = _cached(_loader(WSOLDataset(root, "val", build_transforms(transforms, train=False)), 64, False, 0))
    test = _cached(
        _loader(WSOLDataset(root, "test", build_transforms(transforms, train=False)), 64, False, 0)
    )
    loader = _loader(train_set, args.batch_size, True, args.seed)

    start = time.perf_counter()
    classifier = _classifier(args, num_classes, train_set, loader)
    cam = {k: v for k, v in _evaluate(classifier, test).items() if not isinstance(v, list)}
    print(f"classifier ready in {time.perf_counter() - start:.0f} s; CAM-Avg test {cam}", flush=True)

    runs: dict[str, Any] = {}
    settings = (("with_R", args.lambda_l1),) + ((("without_R", 0.0),) if not args.no_ablation else ())
    for name, lam in settings if args.g_epochs > 0 else ():
        torch.manual_seed(args.seed)
        method = WeightMapMethod(
            num_classes,
            classifier=FrozenClassifier(classifier.classifier),
            encoder=args.encoder,
            weights=args.g_weights,
            lambda_l1=lam,
            target=args.target,
        )
        runs[name] = _train_generator(name, method, train_set, loader, val, test, args) | {"lambda": lam}
    if args.method_two and args.g_epochs > 0:
        torch.manual_seed(args.seed)
        loader.generator.manual_seed(args.seed)
        tiny = {"backbone": "tiny"}
        siamese = WeightMapMethod(num_classes, method="II", phase="pretrain_siamese", siamese=tiny)
        optimizer = torch.optim.SGD(
            siamese.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4
        )
        for epoch in range(args.cls_epochs):
            train_set.set_epoch(epoch)
            _fit_epoch(siamese, loader, optimizer)
        print(f"Siamese f: test top-1 cls (nearest class mean) {_evaluate(siamese, test)['top1_cls']:.1f}")
        torch.manual_seed(args.seed)
        method = WeightMapMethod(
            num_classes,
            method="II",
            siamese=siamese.siamese,
            classifier=FrozenClassifier(classifier.classifier),
            encoder="tiny",
            lambda_l1=args.lambda_l1,
        )
        runs["method_II"] = _train_generator("method_II", method, train_set, loader, val, test, args)
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    return {"config": config, "cam_avg": cam, "runs": runs}


def _verdict(better: float, worse: float) -> str:
    return "yes" if better > worse else ("tie" if better == worse else "no")


def _claim2(curve: list[dict[str, Any]], chosen: int, score: str) -> str:
    sel, last = curve[chosen], curve[-1]
    return (
        f"epoch {chosen} ({score} {sel[score]:.3f}): GT-known loc {sel['gt_known_loc']:.1f}, PxAP "
        f"{sel['pxap']:.1f}; last epoch {len(curve) - 1} ({score} {last[score]:.3f}): GT-known loc "
        f"{last['gt_known_loc']:.1f}, PxAP {last['pxap']:.1f} | "
        f"{_verdict(sel['gt_known_loc'], last['gt_known_loc'])}"
    )


def claims_table(results: dict[str, Any]) -> str:
    with_r, cam = results["runs"]["with_R"], results["cam_avg"]
    curve, chosen = with_r["curve"], with_r["selected_epoch"]
    sel, last = curve[chosen], curve[-1]
    rows = ["| claim | measured | holds? |", "|---|---|---|"]
    if "without_R" in results["runs"]:
        last_no_r = results["runs"]["without_R"]["curve"][-1]
        covers = "yes" if last_no_r["map_mean"] > max(0.5, last["map_mean"]) else "no"
        rows.append(
            f"| 1. without R, g covers most of the image | mean map value at the last epoch "
            f"{last_no_r['map_mean']:.3f} without R vs {last['map_mean']:.3f} with R (GT-known loc "
            f"{last_no_r['gt_known_loc']:.1f} vs {last['gt_known_loc']:.1f}) | {covers} |"
        )
    oracle = max(range(len(curve)), key=lambda i: curve[i]["gt_known_loc"])
    rows += [
        f"| 2. max-S epoch (guarded S) localizes better than the last | {_claim2(curve, chosen, 'val_s')} |",
        f"| 2'. the same with the paper-exact S | "
        f"{_claim2(curve, with_r['selected_epoch_paper'], 'val_s_paper')} |",
        f"| (reference) best test epoch | epoch {oracle}: GT-known loc {curve[oracle]['gt_known_loc']:.1f}, "
        f"PxAP {curve[oracle]['pxap']:.1f} | – |",
        f"| 3. method I PxAP above CAM-Avg (same f) | PxAP {sel['pxap']:.1f} (guarded-S epoch) vs "
        f"{cam['pxap']:.1f}; GT-known loc {sel['gt_known_loc']:.1f} vs {cam['gt_known_loc']:.1f} | "
        f"{_verdict(sel['pxap'], cam['pxap'])} |",
    ]
    return "\n".join(rows)


def curve_table(results: dict[str, Any], name: str) -> str:
    lines = [
        "| epoch | val S (guarded) | val S (paper) | test GT-known loc | test top-1 loc | test PxAP "
        "| mean map |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["runs"][name]["curve"]:
        lines.append(
            f"| {row['epoch']} | {row['val_s']:.3f} | {row['val_s_paper']:.3f} | {row['gt_known_loc']:.1f} | "
            f"{row['top1_loc']:.1f} | {row['pxap']:.1f} | {row['map_mean']:.3f} |"
        )
    return "\n".join(lines)


def plot_curves(results: dict[str, Any], path: Path) -> None:
    """Mean val S next to test GT-known loc and PxAP per epoch, one column per run (paper Fig. 4)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["runs"])
    figure, axes = plt.subplots(2, len(names), figsize=(4 * len(names), 5), sharex=True, squeeze=False)
    for column, name in enumerate(names):
        run = results["runs"][name]
        epochs = [row["epoch"] for row in run["curve"]]
        top, bottom = axes[0][column], axes[1][column]
        for key, style in (("val_s", "-"), ("val_s_paper", ":")):
            top.plot(epochs, [row[key] for row in run["curve"]], style, marker="o", color="black", label=key)
        top.axvline(run["selected_epoch"], linestyle="--", color="grey")
        top.set_title(f"{name}: val S (dashed: max guarded S)")
        top.legend(fontsize="small")
        for key, label in (("gt_known_loc", "GT-known loc"), ("pxap", "PxAP")):
            bottom.plot(epochs, [row[key] for row in run["curve"]], marker="o", label=f"test {label}")
        bottom.axhline(results["cam_avg"]["pxap"], linestyle=":", color="grey", label="CAM-Avg PxAP")
        bottom.set_xlabel("epoch")
        bottom.legend(fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=Path("results/cache"))
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--train", type=int, default=400)
    parser.add_argument("--val", type=int, default=100)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--object-area", type=float, nargs=2, default=(0.05, 0.6), metavar=("MIN", "MAX"))
    parser.add_argument(
        "--body-evidence", type=float, default=0.5, help="synthetic SynthConfig.body_evidence"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--cls-epochs", type=int, default=15)
    parser.add_argument("--cls-lr", type=float, default=0.1)
    parser.add_argument("--g-epochs", type=int, default=12)
    parser.add_argument("--g-lr", type=float, default=1e-3)
    parser.add_argument("--lambda-l1", type=float, default=1.0)
    parser.add_argument("--target", choices=("soft", "hard", "label"), default="soft")
    parser.add_argument("--encoder", default="tiny", help="g's encoder (a wsol.models backbone with stages)")
    parser.add_argument("--g-weights", default=None, help="g's encoder weights: imagenet or a .pth file")
    parser.add_argument("--no-ablation", action="store_true", help="skip the run without R (claim 1)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--method-two", action="store_true", help="also train method II (Siamese f, then g)")
    parser.add_argument("--classifier", type=Path, default=None, help="reuse (or save) f's state_dict here")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--plot", type=Path, default=None, help="save the S / localization curves as a PNG")
    parser.add_argument("--from-json", type=Path, default=None, help="only print the tables of a saved run")
    args = parser.parse_args(argv)
    if args.from_json is not None:
        results = json.loads(args.from_json.read_text())
    else:
        results = run(args)
        if args.g_epochs == 0:  # only train (and cache) the classifier
            return 0
    print("\nClaims\n" + claims_table(results))
    for name in results["runs"]:
        print(f"\nCurve {name}\n" + curve_table(results, name))
    if args.plot is not None:
        plot_curves(results, args.plot)
    if args.out is not None and args.from_json is None:
        atomic_write_text(args.out, json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
