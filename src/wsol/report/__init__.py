"""Reports: plots, overlays and tables built from evaluation results (matplotlib with the Agg backend)."""
