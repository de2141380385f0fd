"""Training engine: a Lightning module for any ``WSOLMethod``, configs, atomic checkpoints, resume, DDP.

See ``docs/training.md``. Entry points: ``wsol.training.run.train`` (``wsol train``),
``wsol.training.inference.load_checkpoint`` / ``predict_images`` (``wsol localize``) and
``wsol.training.inference.evaluate_checkpoint`` (``wsol evaluate --checkpoint``). Submodules are imported on
use, so that reading a config does not import Lightning.
"""
