"""PyTorch models, registered by name for job specs."""

from skate.models import rnn as _rnn  # noqa: F401  (registers the built-in models)
from skate.models.base import MODELS, ModelConfig

__all__ = ["MODELS", "ModelConfig"]
