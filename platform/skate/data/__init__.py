"""Data sets as Arrow tables: built-in sources and the helpers that split and convert them."""

from skate.data import sources as _sources  # noqa: F401  (registers the built-in sources)
from skate.data.base import DATA_SOURCES, DataConfig, DatasetInfo, info_of, make_table, split_table, to_numpy

__all__ = ["DATA_SOURCES", "DataConfig", "DatasetInfo", "info_of", "make_table", "split_table", "to_numpy"]
