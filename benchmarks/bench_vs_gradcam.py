"""``wsol.cams`` against pytorch-grad-cam on the methods both implement: same model, inputs, one process.

Model: ``wsol.models.build_backbone("resnet50")`` (random weights) + GAP + a 200-way linear layer, eval mode,
target layer = the backbone (layer4's output, 2048 × 7 × 7 at 224 px; ``--layer`` for another one). Each
setting runs ours and grad-cam's alternately ``--repeats`` times and keeps the median time; peak memory is
the largest rise of the process's resident set during a call (sampled every 2 ms, after handing the
allocator's free pages back with ``malloc_trim``). Both produce (B, H, W) maps in [0, 1]: ours are
``extractor(x, targets, upsample_to="input")`` (ReLU, bilinear resize, min-max), grad-cam's go through ReLU,
min-max, ``cv2.resize`` (the same bilinear interpolation) and min-max again; the last column is the largest
absolute difference.

Known differences (not bugs of either side):

* Grad-CAM++: grad-cam adds an absolute ε = 1e-6 to α's denominator (ours sets α = 0 where it is 0): where
  2g² + Σ A g³ is of the order of 1e-6 (small gradients) its α is much smaller than the formula's.
* Score-CAM: grad-cam weights by the softmax over channels of the target logits (our
  ``weighting="channel_softmax"``, used here) and upsamples the masks with ``align_corners=True`` (ours:
  ``False``, as every other resize of the library), and adds 1e-8 to the mask's range; it also forwards
  constant channels (a zero mask), which only rescales every weight of the image by one factor.
* grad-cam normalises with ``max + 1e-7`` (a relative 1e-7 / max of the raw map).

grad-cam is not a dependency of the project: install it in a scratch environment (it needs torchvision,
see docs/cams.md). Without it, the script says so and times our side alone. Usage::

    python benchmarks/bench_vs_gradcam.py                          # all six shared methods, one thread
    python benchmarks/bench_vs_gradcam.py --methods ablationcam --ablation-settings 1x224
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib.metadata
import io
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from bench_cams import Classifier  # the same ResNet-50 + GAP + 200-way model (this folder)
from wsol.cams import build_extractor

GRADIENT_METHODS = ("gradcam", "gradcampp", "xgradcam", "layercam")
GRAD_CAM_CLASSES = {
    "gradcam": "GradCAM",
    "gradcampp": "GradCAMPlusPlus",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
    "ablationcam": "AblationCAM",
    "scorecam": "ScoreCAM",
}
OUR_OPTIONS: dict[str, dict[str, object]] = {"scorecam": {"weighting": "channel_softmax"}}


@dataclass(frozen=True)
class Measurement:
    """One implementation at one setting."""

    seconds: float
    """Median wall time of one call."""
    peak_bytes: int
    """Largest rise of the resident set during a call."""
    maps: np.ndarray


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _release_free_memory() -> None:
    """Give the allocator's free pages back to the system (glibc), so that a call's RSS rise is what it
    allocates rather than what earlier calls left free."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _run_sampled(fn: Callable[[], np.ndarray]) -> tuple[float, int, np.ndarray]:
    """Wall time, peak RSS rise (sampled by a thread every 2 ms) and result of one call."""
    _release_free_memory()
    start_rss = _rss_bytes()
    peak = [start_rss]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.002):
            peak[0] = max(peak[0], _rss_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        out = fn()
    finally:
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    return seconds, max(peak[0], _rss_bytes()) - start_rss, out


def _ours(method: str, model: Classifier, layer: nn.Module, chunk: int | None) -> Callable[..., np.ndarray]:
    options = dict(OUR_OPTIONS.get(method, {}))
    if chunk is not None and method in ("ablationcam", "scorecam"):
        options["batch_size"] = chunk

    def run(x: Tensor, targets: Tensor) -> np.ndarray:
        with build_extractor(method, model, layer, **options) as extractor:
            return extractor(x, targets, upsample_to="input", mode="bilinear").numpy()

    return run


def _theirs(method: str, model: Classifier, layer: nn.Module) -> Callable[..., np.ndarray]:
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    cls = getattr(pytorch_grad_cam, GRAD_CAM_CLASSES[method])

    def run(x: Tensor, targets: Tensor) -> np.ndarray:
        with (
            cls(model=model, target_layers=[layer]) as cam,  # its hooks live as long as the object
            contextlib.redirect_stderr(io.StringIO()),  # its progress bars
        ):
            maps = cam(x, [ClassifierOutputTarget(int(c)) for c in targets])
        model.zero_grad(set_to_none=True)  # grad-cam back-propagates into the parameters
        return maps

    return run


def _measure(fns: dict[str, Callable[..., np.ndarray]], x: Tensor, targets: Tensor, repeats: int) -> dict:
    """Alternate the implementations ``repeats`` times (a busy spell of the machine hits all of them)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    peaks: dict[str, int] = dict.fromkeys(fns, 0)
    maps: dict[str, np.ndarray] = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            seconds, peak, maps[name] = _run_sampled(lambda fn=fn: fn(x, targets))
            times[name].append(seconds)
            peaks[name] = max(peaks[name], peak)
    return {name: Measurement(statistics.median(times[name]), peaks[name], maps[name]) for name in fns}


def _settings(text: list[str]) -> list[tuple[int, int]]:
    try:
        return [(int(b), int(s)) for b, s in (item.lower().split("x") for item in text)]
    except ValueError as err:
        raise SystemExit(f"settings: expected BATCHxSIZE items such as 8x224, got {text}") from err


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--methods", nargs="+", default=list(GRAD_CAM_CLASSES), choices=list(GRAD_CAM_CLASSES)
    )
    parser.add_argument("--settings", nargs="+", default=["1x224", "8x224", "32x112"], help="gradient family")
    parser.add_argument("--ablation-settings", nargs="+", default=["1x224", "8x112"])
    parser.add_argument("--score-settings", nargs="+", default=["1x48"], help="2048 forwards per image")
    parser.add_argument("--layer", default="backbone", help="dotted name of the target layer")
    parser.add_argument(
        "--chunk", type=int, default=None, help="our Score/Ablation batch_size (default: ours)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    return parser


def _grad_cam_missing() -> str | None:
    """Why grad-cam cannot be compared, or None when it imports."""
    try:
        import pytorch_grad_cam  # noqa: F401
    except Exception as err:  # ImportError, or torchvision failing to load its operators
        return f"{type(err).__name__}: {err}"
    return None


def main() -> None:
    args = _parser().parse_args()
    torch.set_num_threads(args.threads)
    missing = _grad_cam_missing()
    torch.manual_seed(0)
    model = Classifier().eval()
    layer = model.get_submodule(args.layer)
    version = "not importable" if missing else importlib.metadata.version("grad-cam")
    print(
        f"torch={torch.__version__} threads={torch.get_num_threads()} grad-cam={version} layer={args.layer}"
    )
    if missing:
        print(f"grad-cam is not importable ({missing}): timing ours alone")
    print(
        "| method | batch × size | ours (s) | grad-cam (s) | speed-up | peak RSS ours / grad-cam (MiB) "
        "| max abs diff |"
    )
    print("|---|---|---|---|---|---|---|")
    for method in args.methods:
        family = {"ablationcam": args.ablation_settings, "scorecam": args.score_settings}
        for batch, size in _settings(family.get(method, args.settings)):
            x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))
            targets = torch.arange(batch) * 7 % 200
            fns = {"ours": _ours(method, model, layer, args.chunk)}
            if not missing:
                fns["theirs"] = _theirs(method, model, layer)
            result = _measure(fns, x, targets, args.repeats)
            ours = result["ours"]
            row = f"| {method} | {batch} × {size}² | {ours.seconds:.3g} |"
            if missing:
                print(f"{row} – | – | {ours.peak_bytes / 2**20:.0f} / – | – |", flush=True)
                continue
            theirs = result["theirs"]
            diff = np.abs(ours.maps - theirs.maps).max()
            print(
                f"{row} {theirs.seconds:.3g} | {theirs.seconds / ours.seconds:.2f}× | "
                f"{ours.peak_bytes / 2**20:.0f} / {theirs.peak_bytes / 2**20:.0f} | {diff:.1e} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
