"""Copy a ``wsol train`` checkpoint with some of its method options changed (same weights, same kept epoch).

    python benchmarks/checkpoint_with_options.py RUN/checkpoints/best.ckpt OUT.ckpt class_source=localizer

Used to evaluate inference-only options on existing runs, e.g. min-max entropy's ``class_source``
(docs/minmax_entropy.md, "The price in classification error"): then ``wsol evaluate --checkpoint OUT.ckpt``.
Values are parsed as YAML scalars. The checkpoint is read with ``weights_only`` loading, as everywhere.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml

from wsol.methods.checkpoint import CHECKPOINT_KEY, load_checkpoint, read_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("options", nargs="+", help="KEY=VALUE of method.options")
    args = parser.parse_args()
    checkpoint = read_checkpoint(args.checkpoint)
    options = checkpoint[CHECKPOINT_KEY]["config"]["method"].setdefault("options", {})
    for item in args.options:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"{item!r}: expected KEY=VALUE")
        options[key] = yaml.safe_load(value)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, args.out)
    load_checkpoint(args.out)  # the method builds with the new options
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
