"""Bar sources: the synthetic default, Qlib binary directories and CSV directories."""

from __future__ import annotations

from warehouse.sources.base import BarSource, BarsRead, SkippedFile, SourceError
from warehouse.sources.csv_dir import CsvDirSource
from warehouse.sources.qlib_bin import QlibBinSource
from warehouse.sources.synthetic import SyntheticSource, SyntheticSpec

ON_BAD_FILE = ("fail", "skip")

__all__ = [
    "BarSource",
    "BarsRead",
    "CsvDirSource",
    "QlibBinSource",
    "SkippedFile",
    "SourceError",
    "SyntheticSource",
    "open_source",
]


def open_source(uri: str, on_bad_file: str = "fail") -> BarSource:
    """``synthetic[:options]``, ``qlib:<dir>`` or ``csv:<dir>`` (the PIPELINE_SOURCE contract)."""
    if on_bad_file not in ON_BAD_FILE:
        raise SourceError(f"on_bad_file must be one of {', '.join(ON_BAD_FILE)}, got {on_bad_file!r}")
    scheme, _, rest = uri.strip().partition(":")
    if scheme == "synthetic":
        return SyntheticSource(SyntheticSpec.parse(rest), on_bad_file=on_bad_file)
    if scheme in ("qlib", "csv") and not rest:
        raise SourceError(f"PIPELINE_SOURCE {uri!r} needs a directory, e.g. {scheme}:/path/to/data")
    if scheme == "qlib":
        return QlibBinSource(rest, on_bad_file=on_bad_file)
    if scheme == "csv":
        return CsvDirSource(rest, on_bad_file=on_bad_file)
    raise SourceError(
        f"PIPELINE_SOURCE {uri!r} has an unknown scheme {scheme!r}; valid: synthetic, qlib:<dir>, csv:<dir>"
    )
