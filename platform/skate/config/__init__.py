"""Typed configs: documented fields, variant registries, strict loading, YAML and JSON Schema.

This package depends on nothing else in skate, so every component can declare its config with it.
"""

from skate.config.fields import Variants, param
from skate.config.loader import Locator, load_config

__all__ = ["Locator", "Variants", "load_config", "param"]
