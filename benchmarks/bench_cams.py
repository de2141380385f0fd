"""Maps per second of each ``wsol.cams`` method against an equivalent plain per-sample loop, same run.

The model is ``wsol.models.build_backbone("resnet50")`` (random weights) + GAP + a 200-way linear layer, in
eval mode, target layer = the backbone's output (layer4, 2048 × 7 × 7 at 224 px). The baseline is what most
code does: one image at a time, a forward hook on the target layer, ``torch.autograd.grad`` of the image's
target logit, then the same formula; the Score-CAM family and Ablation-CAM loop over images, channels and
noise samples with one forward each (the released Score-CAM code's loop). Both produce the same maps: the
largest absolute difference after min-max normalisation is printed next to the speeds.

The Score family and Ablation-CAM need one forward per (image, channel[, sample]) — 2048 × 32 ResNet-50
forwards per batch at 224 px — so they run by default on smaller settings (``--score-batch``,
``--score-size``, ``--score-samples``), printed in the table. Usage::

    python benchmarks/bench_cams.py                       # everything, CPU or the first GPU
    python benchmarks/bench_cams.py --methods gradcam cam --batch 8 --size 128
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from wsol.cams import CAM_METHODS, build_extractor
from wsol.cams.ablationcam import AblationCAM
from wsol.cams.base import minmax_normalize, resize_maps
from wsol.cams.gradcampp import gradcampp_weights
from wsol.models import build_backbone

GRADIENT_METHODS = (
    "cam",
    "recombined_cam",
    "gradcam",
    "gradcampp",
    "xgradcam",
    "layercam",
    "smoothgradcampp",
)
SCORE_METHODS = ("scorecam", "sscam", "iscam", "ablationcam")


class Classifier(nn.Module):
    """ResNet-50 + linear classifier, the model every CAM of the benchmark explains."""

    def __init__(self, num_classes: int = 200) -> None:
        super().__init__()
        self.backbone = build_backbone("resnet50")
        self.fc = nn.Linear(self.backbone.out_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.backbone(x).mean((2, 3)))


def _gradient_loop(method: str, model: Classifier, x: Tensor, targets: Tensor, samples: int) -> Tensor:
    """Per-image forward + autograd.grad of the image's logit, then the method's formula."""
    store: dict[str, Tensor] = {}
    handle = model.backbone.register_forward_hook(lambda _m, _a, out: store.__setitem__("a", out))
    maps = []
    try:
        for i in range(len(x)):
            c = int(targets[i])
            logits = model(x[i : i + 1])
            a = store["a"]
            if method in ("cam", "recombined_cam"):
                w = model.fc.weight[c]
                w = w.abs() if method == "recombined_cam" else w
                maps.append(torch.einsum("k,khw->hw", w, a[0]).detach())
                continue
            if method == "smoothgradcampp":
                noise = 0.3 * torch.randn((samples, *x.shape[1:]), generator=torch.Generator().manual_seed(0))
                powers = [torch.zeros_like(a) for _ in range(3)]
                for s in range(samples):
                    out = model(x[i : i + 1] + noise[s].to(x.device))
                    g = torch.autograd.grad(out[0, c], store["a"])[0]
                    powers = [p + g.pow(n + 1) for n, p in enumerate(powers)]
                w = gradcampp_weights(a, *(p / samples for p in powers))
                maps.append(torch.einsum("bk,bkhw->bhw", w, a)[0].detach())
                continue
            g = torch.autograd.grad(logits[0, c], a)[0]
            if method == "gradcam":
                w = g.mean((2, 3))
            elif method == "gradcampp":
                w = gradcampp_weights(a, g, g.pow(2), g.pow(3))
            elif method == "xgradcam":
                w = (g * a).sum((2, 3)) / (a.sum((2, 3)) + 1e-7)
            else:  # layercam
                maps.append((g.clamp_min(0) * a).sum(1)[0].detach())
                continue
            maps.append(torch.einsum("bk,bkhw->bhw", w, a)[0].detach())
    finally:
        handle.remove()
    return torch.stack(maps)


class HookAblationCAM(AblationCAM):
    """Our first Ablation-CAM: a forward hook replaces the target layer's output, so every ablated forward
    still computes the layer and everything before it (``prefix``, the outputs to replay, is ignored)."""

    def ablated_outputs(
        self, inputs: Tensor, layer: int, replacement: Tensor, prefix: object = None
    ) -> Tensor:
        handle = self.layers[layer][1].register_forward_hook(lambda _m, _a, _o: replacement)
        try:
            return self.output_selector(self.model(inputs))
        finally:
            handle.remove()


def _previous_ablation(model: Classifier, x: Tensor, targets: Tensor, batch_size: int) -> Tensor:
    with HookAblationCAM(model, model.backbone, batch_size=batch_size) as extractor:
        return extractor(x, targets, relu=False, normalize=None)


@torch.no_grad()
def _score_loop(method: str, model: Classifier, x: Tensor, targets: Tensor, samples: int) -> Tensor:
    """Per image, per channel (and per noise sample / path step): one forward of a single masked image."""
    maps = []
    for i in range(len(x)):
        c = int(targets[i])
        a = model.backbone(x[i : i + 1])[0]
        base = model.fc(a.mean((1, 2)))[c]
        weights = torch.zeros(a.shape[0], device=x.device)
        noise = 2.0 * torch.randn((samples, 1, *x.shape[2:]), generator=torch.Generator().manual_seed(0))
        for k in range(a.shape[0]):
            if method == "ablationcam":  # full forward with the layer's output replaced, as a hook does
                if not a[k].any():
                    continue
                ablated = a.clone()
                ablated[k] = 0
                handle = model.backbone.register_forward_hook(lambda _m, _a, _o, v=ablated[None]: v)
                try:
                    weights[k] = (base - model(x[i : i + 1])[0, c]) / base
                finally:
                    handle.remove()
                continue
            if a[k].max() == a[k].min():
                continue
            mask = minmax_normalize(resize_maps(a[k][None], tuple(x.shape[2:]), "bilinear"))[None]
            if method == "scorecam":
                variants = [x[i : i + 1] * mask]
            elif method == "sscam":
                variants = [x[i : i + 1] * (mask + noise[s].to(x.device)) for s in range(samples)]
            else:  # iscam
                variants = [x[i : i + 1] * mask * (s + 1) / samples for s in range(samples)]
            weights[k] = sum(model(v).softmax(1)[0, c] for v in variants) / len(variants)
        maps.append(torch.einsum("k,khw->hw", weights, a))
    return torch.stack(maps)


def _time(
    device: torch.device, fn: Callable[..., Tensor], *args: object, **kwargs: object
) -> tuple[float, Tensor]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", nargs="+", default=list(GRADIENT_METHODS + SCORE_METHODS))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--score-batch", type=int, default=2)
    parser.add_argument("--score-size", type=int, default=64)
    parser.add_argument(
        "--score-samples", type=int, default=2, help="SS-CAM / IS-CAM samples (paper: 35 / 10)"
    )
    parser.add_argument("--smooth-samples", type=int, default=4, help="Smooth Grad-CAM++ noisy inputs")
    parser.add_argument("--chunk", type=int, default=64, help="Score family / Ablation-CAM batch_size")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument(
        "--repeats", type=int, default=1, help="alternate ours / loop this often, keep the best"
    )
    return parser


def _options(method: str, args: argparse.Namespace) -> dict[str, object]:
    """The extractor's keyword options for ``method`` under the command line's settings."""
    options: dict[str, object] = {}
    if method in SCORE_METHODS:
        options["batch_size"] = args.chunk
    if method in ("sscam", "iscam"):
        options["num_samples"] = args.score_samples
    if method == "smoothgradcampp":
        options["num_samples"] = args.smooth_samples
    return options


def _bench_method(method: str, model: nn.Module, args: argparse.Namespace, device: torch.device) -> None:
    """One table row: ours vs the per-sample loop (and, for Ablation-CAM, vs our previous hook version)."""
    score = method in SCORE_METHODS
    batch, size = (args.score_batch, args.score_size) if score else (args.batch, args.size)
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1)).to(device)
    targets = torch.arange(batch, device=device) % 200
    options = _options(method, args)
    samples = args.smooth_samples if method == "smoothgradcampp" else args.score_samples
    loop = _score_loop if score else _gradient_loop
    ours_s = loop_s = float("inf")
    with build_extractor(method, model, model.backbone, **options) as extractor:
        extractor(x[:1], targets[:1])  # warm-up
        for _ in range(args.repeats):  # alternating, so that a busy spell of a shared machine hits both
            seconds, ours = _time(device, extractor, x, targets, relu=False, normalize=None)
            ours_s = min(ours_s, seconds)
            seconds, reference = _time(device, loop, method, model, x, targets, samples)
            loop_s = min(loop_s, seconds)
    diff = float((minmax_normalize(ours) - minmax_normalize(reference)).abs().max())
    settings = f"{batch} × {size}²"
    if method in ("sscam", "iscam", "smoothgradcampp"):
        settings += f", N={samples}"
    print(
        f"| {method} | {settings} | {batch / ours_s:.3g} | {batch / loop_s:.3g} | "
        f"{loop_s / ours_s:.1f}× | {diff:.1e} |",
        flush=True,
    )
    if method == "ablationcam":  # against our previous implementation (hook), same inputs, same run
        previous_s, previous = _time(device, _previous_ablation, model, x, targets, args.chunk)
        with build_extractor(method, model, model.backbone, **options) as extractor:
            ours_s, ours = _time(device, extractor, x, targets, relu=False, normalize=None)
        diff = float((ours - previous).abs().max())
        print(
            f"| ablationcam vs our previous (hook) | {settings} | {batch / ours_s:.3g} | "
            f"{batch / previous_s:.3g} | {previous_s / ours_s:.1f}× | {diff:.1e} |",
            flush=True,
        )


def main() -> None:
    parser = _parser()
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    unknown = sorted(set(args.methods) - set(CAM_METHODS))
    if unknown:
        parser.error(f"--methods: unknown {unknown}; expected names from {sorted(CAM_METHODS)}")

    device = torch.device(args.device)
    torch.manual_seed(0)
    model = Classifier().to(device).eval()
    print(f"device={device} threads={torch.get_num_threads()} torch={torch.__version__}")
    print("| method | batch × size | ours (maps/s) | per-sample loop (maps/s) | speed-up | max abs diff |")
    print("|---|---|---|---|---|---|")
    for method in args.methods:
        _bench_method(method, model, args, device)


if __name__ == "__main__":
    main()
