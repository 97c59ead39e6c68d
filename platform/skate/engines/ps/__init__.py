"""The parameter-server engine: sharded servers and data-parallel workers on Ray actors."""

from skate.engines.ps.config import ParameterServerConfig

__all__ = ["ParameterServerConfig"]
