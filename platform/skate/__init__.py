"""skate: distributed training on Ray from one YAML job spec.

The Python API (see :mod:`skate.api`): ``load_spec``, ``run``, ``resume``, ``tune``, ``resume_tune``.
"""

from skate.api import load_spec, resume, resume_tune, run, tune
from skate.errors import SkateError, SpecError

__version__ = "0.1.0"
__all__ = ["SkateError", "SpecError", "__version__", "load_spec", "resume", "resume_tune", "run", "tune"]
