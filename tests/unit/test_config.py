"""Settings precedence and value parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from wheelyard import config
from wheelyard.core.errors import InvalidInput


@pytest.mark.parametrize(
    ("text", "size"), [("1G", 1024**3), ("100M", 100 * 1024**2), ("5k", 5120), ("7", 7)]
)
def test_sizes_are_powers_of_1024(text: str, size: int) -> None:
    assert config.parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "seconds"), [("90d", 90 * 86400), ("2h", 7200), ("5m", 300), ("1s", 1)]
)
def test_durations(text: str, seconds: int) -> None:
    assert config.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "d", "-1d", "1.5h"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="invalid duration"):
        config.parse_duration(text)


def test_flags_beat_environment_beats_file(tmp_path: Path) -> None:
    toml = tmp_path / "wheelyard.toml"
    toml.write_text('data-dir = "/from/file"\nmax-upload-size = "2M"\n')
    env = {"WHEELYARD_CONFIG": str(toml)}
    assert config.load({}, env).data_dir == Path("/from/file")
    assert config.load({}, env).max_upload_size == 2 * 1024**2
    env["WHEELYARD_DATA_DIR"] = "/from/env"
    assert config.load({}, env).data_dir == Path("/from/env")
    assert config.load({"data_dir": "/from/flag"}, env).data_dir == Path("/from/flag")


def test_defaults_derive_from_the_data_dir(tmp_path: Path) -> None:
    settings = config.load({"data_dir": str(tmp_path)}, {})
    assert settings.database_url == f"sqlite:///{tmp_path / 'wheelyard.db'}"
    assert settings.storage_url == f"file://{tmp_path / 'files'}"


def test_unreadable_config_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(InvalidInput, match="not valid TOML"):
        config.load({"config": str(bad)}, {})
    with pytest.raises(InvalidInput, match="not found"):
        config.load({"config": str(tmp_path / "missing.toml")}, {})
