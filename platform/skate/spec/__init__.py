"""Job specs: strict YAML loading into typed configs, command-line overrides and the JSON Schema."""

from skate.spec.io import dump_spec, load_spec, load_spec_data, spec_schema
from skate.spec.job import CheckpointConfig, JobSpec, TrainConfig

__all__ = ["CheckpointConfig", "JobSpec", "TrainConfig", "dump_spec", "load_spec", "load_spec_data", "spec_schema"]
