"""Data sets as Arrow tables: built-in sources and the helpers that split and convert them."""

from skate.data import parquet as _parquet, series as _series, sources as _sources  # noqa: F401  (register the sources)
from skate.data import translation as _translation  # noqa: F401  (registers the translation source)
from skate.data.base import (DATA_SOURCES, DataConfig, DatasetInfo, info_of, make_table, split_record, split_rows,
                             split_table, to_numpy)

__all__ = ["DATA_SOURCES", "DataConfig", "DatasetInfo", "info_of", "make_table", "split_record", "split_rows",
           "split_table", "to_numpy"]
