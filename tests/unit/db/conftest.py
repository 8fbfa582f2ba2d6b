"""A runtime over each unit-test database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wheelyard import config
from wheelyard.wiring import Runtime, open_runtime


@pytest.fixture
async def runtime(database_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = config.load({"data_dir": str(tmp_path), "database_url": database_url}, {})
    opened = await open_runtime(settings)
    yield opened
    await opened.close()
