"""Training engine: a Lightning module for any ``WSOLMethod``, configs, atomic checkpoints, resume, DDP.

See ``docs/training.md``. Entry points: ``wsol.training.run.train`` (``wsol train``),
``wsol.training.inference.predict_images`` on a method loaded by ``wsol.methods.checkpoint.load_checkpoint``
(``wsol localize``) and ``wsol.training.inference.evaluate_checkpoint`` (``wsol evaluate --checkpoint``).
Submodules are imported on use, so that reading a config does not import Lightning.
"""
