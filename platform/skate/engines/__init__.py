"""Engines: the ways a supervised job is trained on Ray, all behind :class:`Engine`."""

from skate.engines import allreduce as _allreduce  # noqa: F401  (registers the built-in engines)
from skate.engines import ps as _ps  # noqa: F401
from skate.engines import single as _single  # noqa: F401
from skate.engines.base import STRATEGIES, Engine, StrategyConfig, Workload
from skate.engines.optim import OptimizerConfig

__all__ = ["STRATEGIES", "Engine", "OptimizerConfig", "StrategyConfig", "Workload"]
