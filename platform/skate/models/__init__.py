"""Models, registered by name for job specs: their configs, which import torch only to build a module
(each config module ``X`` builds the modules of ``X_nets``)."""

from skate.models import autoencoders as _autoencoders, pretraining as _pretraining  # noqa: F401  (register the autoencoders)
from skate.models import rnn as _rnn  # noqa: F401  (registers the built-in models)
from skate.models import seq2seq as _seq2seq  # noqa: F401  (registers the encoder-decoder)
from skate.models.base import MODELS, ModelConfig

__all__ = ["MODELS", "ModelConfig"]
