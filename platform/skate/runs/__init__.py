"""The run directory: spec, metrics.parquet, checkpoints, summary.json and reports."""
