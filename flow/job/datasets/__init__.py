"""Data sets shipped with gaussprobe (see DATA_LICENSES.md for sources)."""
