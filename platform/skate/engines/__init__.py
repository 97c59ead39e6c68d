"""Engines: the ways a supervised job is trained on Ray, all behind :class:`skate.engines.base.Engine`.

Importing this package registers the built-in strategies' configs (``train.strategy.kind``), which
need neither Ray nor torch; each config imports its engine when it makes one.
"""

from skate.engines import allreduce as _allreduce  # noqa: F401  (registers the built-in strategies)
from skate.engines import ps as _ps  # noqa: F401
from skate.engines import single as _single  # noqa: F401
from skate.engines.optim import OptimizerConfig
from skate.engines.strategy import STRATEGIES, StrategyConfig

__all__ = ["STRATEGIES", "OptimizerConfig", "StrategyConfig"]
