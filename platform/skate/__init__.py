"""skate: distributed training on Ray from one YAML job spec."""

from skate.errors import SkateError, SpecError

__version__ = "0.1.0"
__all__ = ["SkateError", "SpecError", "__version__"]
