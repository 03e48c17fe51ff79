"""The guard that stops compiling before the process runs out of mappings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import flow
from flow import _mappings


def test_mapping_usage_reads_proc() -> None:
    usage = _mappings.mapping_usage()
    if not _mappings.LIMIT_FILE.exists():
        assert usage is None
        return
    assert usage is not None
    used, limit = usage
    assert 0 < used < limit


def lower_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, headroom: int) -> None:
    """Point the guard at a limit ``headroom`` above the mappings in use now."""
    if not _mappings.LIMIT_FILE.exists():
        pytest.skip("/proc/sys/vm/max_map_count exists only on Linux")
    usage = _mappings.mapping_usage()
    assert usage is not None
    limit_file = tmp_path / "max_map_count"
    limit_file.write_text(f"{usage[0] + headroom}\n")
    monkeypatch.setattr(_mappings, "LIMIT_FILE", limit_file)


def test_headroom_error_names_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lower_limit(tmp_path, monkeypatch, headroom=10)
    expected = r"cannot compile the probe: this process uses [\d,]+ of its [\d,]+ "
    with pytest.raises(flow.MappingLimitError, match=expected):
        _mappings.check_mapping_headroom("the probe")


def test_compile_stops_at_mapping_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = flow.GaussianizationFlow(dim=2, num_blocks=1, num_components=2)
    rows = np.random.default_rng(0).standard_normal((64, 2)).astype(np.float32)
    model.initialize_from_data(rows, seed=0)
    runner = flow.CompiledFlow(model)
    lower_limit(tmp_path, monkeypatch, headroom=_mappings.RESERVED_MAPPINGS - 1)
    with pytest.raises(flow.MappingLimitError, match=r"forward kernel for 16 rows"):
        runner.compile_bucket("transform", 16)
    assert runner.num_compilations == 0


def test_missing_proc_files_skip_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_mappings, "LIMIT_FILE", tmp_path / "absent")
    assert _mappings.mapping_usage() is None
    _mappings.check_mapping_headroom("anything")
