"""The ``wsol`` command line (:mod:`wsol.cli.main`); one module per verb."""
