"""Upkeep removes the scratch files a killed process left, and only those."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from wheelyard import config
from wheelyard.services.housekeeping import Housekeeping, remove_stale_scratch
from wheelyard.wiring import Runtime, open_runtime

TWO_DAYS = 2 * 24 * 3600


def scratch_file(directory: Path, name: str, age_seconds: float) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(b"partial")
    moment = time.time() - age_seconds
    os.utime(path, (moment, moment))
    return path


def test_only_files_untouched_for_longer_than_the_age_are_removed(tmp_path: Path) -> None:
    spool, downloads = tmp_path / "uploads", tmp_path / "proxy-downloads"
    stale = [scratch_file(spool, "upload-a", TWO_DAYS), scratch_file(downloads, "f", TWO_DAYS)]
    fresh = scratch_file(spool, "upload-b", 60)
    nested = scratch_file(spool / "inner", "old", TWO_DAYS)  # only files directly inside
    (spool / "link").symlink_to(nested)
    os.utime(spool / "link", (0, 0), follow_symlinks=False)
    missing = tmp_path / "never-made"
    removed = remove_stale_scratch((spool, downloads, missing), timedelta(days=1))
    assert removed == 2
    assert [path.exists() for path in stale] == [False, False]
    assert fresh.exists()
    assert nested.exists()
    assert (spool / "link").is_symlink()


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = config.load({"data_dir": str(tmp_path / "data")}, {})
    opened = await open_runtime(settings)
    yield opened
    await opened.close()


async def test_upkeep_sweeps_the_runtime_scratch_directories(runtime: Runtime) -> None:
    directories = runtime.scratch_directories
    assert runtime.upload_spool in directories
    assert len(directories) == 3  # spooled uploads, upstream fetches, blobs being written
    left = [scratch_file(directory, "partial", TWO_DAYS) for directory in directories]
    working = scratch_file(runtime.upload_spool, "in-use", 1)
    housekeeping = Housekeeping(runtime.services, timedelta(days=365), directories)
    await housekeeping.run_once()
    assert not any(path.exists() for path in left)
    assert working.exists()
