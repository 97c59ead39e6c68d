"""skate: distributed training on Ray from one YAML job spec.

The Python API (see :mod:`skate.api`): ``load_spec``, ``run``, ``resume``, ``tune``, ``resume_tune``, ``submit``;
plugins (see :mod:`skate.plugins`): ``register_model``, ``register_data_source``, ``register_env``,
``register_objective``, ``PluginObjective``.
"""

from typing import Any

from skate.api import load_spec, resume, resume_tune, run, submit, tune
from skate.errors import SkateError, SpecError

__version__ = "0.1.0"
_PLUGINS = ("register_model", "register_data_source", "register_env", "register_objective", "PluginObjective")
__all__ = ["SkateError", "SpecError", "__version__", "load_spec", "resume", "resume_tune", "run", "submit", "tune", *_PLUGINS]


def __getattr__(name: str) -> Any:  # the plugin API loads every registry (numpy, pyarrow): only when asked for
    if name in _PLUGINS:
        from skate import plugins

        return getattr(plugins, name)
    raise AttributeError(f"module 'skate' has no attribute {name!r}")
