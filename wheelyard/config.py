"""Settings: command-line flags beat environment variables, which beat the TOML file."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wheelyard.core.errors import InvalidInput

DEFAULT_PYPI_URL = "https://pypi.org/simple/"
DEFAULT_OIDC_AUDIENCE = "wheelyard"
_SIZE = re.compile(r"^(\d+)([KMG]?)$", re.IGNORECASE)
_DURATION = re.compile(r"^(\d+)([smhd])$")
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION_SECONDS = 2**31 - 1
"""The longest DURATION (about 68 years): what a 32-bit integer column holds."""


DEFAULT_AUDIT_RETENTION = 365 * 86400


@dataclass(frozen=True)
class Settings:
    """Everything a Wheelyard process needs to know about its environment."""

    data_dir: Path
    database_url: str
    storage_url: str
    max_upload_size: int = 1024**3
    log_format: str = "text"
    pypi_url: str = DEFAULT_PYPI_URL
    admin_password: str | None = None
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    # The audience trusted-publishing ID tokens must be issued for (``aud``).
    oidc_audience: str = DEFAULT_OIDC_AUDIENCE
    # Seconds audit events are kept (``audit-retention``, a DURATION; default 365d).
    audit_retention: int = DEFAULT_AUDIT_RETENTION


def parse_size(text: str) -> int:
    """'100M' -> bytes (powers of 1024)."""
    match = _SIZE.match(text.strip())
    if not match:
        raise InvalidInput(f"invalid size {text!r}: use a number with K, M or G (e.g. 100M)")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).upper()]


def parse_duration(text: str) -> int:
    """'90d' -> seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise InvalidInput(f"invalid duration {text!r}: use a number with s, m, h or d (e.g. 90d)")
    seconds = int(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds > MAX_DURATION_SECONDS:  # past what a date or an integer column can hold
        raise InvalidInput(f"invalid duration {text!r}: at most {MAX_DURATION_SECONDS // 86400}d")
    return seconds


def _read_toml(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise InvalidInput(f"config file {str(path)!r} not found") from None
    except tomllib.TOMLDecodeError as error:
        raise InvalidInput(f"config file {str(path)!r} is not valid TOML: {error}") from None


def _pick(
    flag: Any, env: Mapping[str, str], variable: str, toml: Mapping[str, Any], key: str
) -> Any:
    if flag is not None:
        return flag
    if variable in env:
        return env[variable]
    return toml.get(key)


def load(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from flags (None = not given), the environment and the config file."""
    flags = flags or {}
    env = os.environ if env is None else env
    config_path = flags.get("config") or env.get("WHEELYARD_CONFIG")
    toml = _read_toml(Path(config_path) if config_path else None)

    def pick(name: str, variable: str) -> Any:
        return _pick(flags.get(name), env, variable, toml, name.replace("_", "-"))

    data_dir = Path(pick("data_dir", "WHEELYARD_DATA_DIR") or "./wheelyard-data").absolute()
    database_url = pick("database_url", "WHEELYARD_DATABASE_URL") or (
        f"sqlite:///{data_dir / 'wheelyard.db'}"
    )
    storage_url = pick("storage_url", "WHEELYARD_STORAGE_URL") or (f"file://{data_dir / 'files'}")
    size = pick("max_upload_size", "WHEELYARD_MAX_UPLOAD_SIZE")
    return Settings(
        data_dir=data_dir,
        database_url=str(database_url),
        storage_url=str(storage_url),
        max_upload_size=parse_size(str(size)) if size is not None else 1024**3,
        log_format=str(pick("log_format", "WHEELYARD_LOG_FORMAT") or "text"),
        pypi_url=str(pick("pypi_url", "WHEELYARD_PYPI_URL") or DEFAULT_PYPI_URL),
        admin_password=env.get("WHEELYARD_ADMIN_PASSWORD"),
        argon2_time_cost=int(pick("argon2_time_cost", "WHEELYARD_ARGON2_TIME_COST") or 3),
        argon2_memory_kib=int(pick("argon2_memory_kib", "WHEELYARD_ARGON2_MEMORY_KIB") or 65536),
        oidc_audience=str(
            pick("oidc_audience", "WHEELYARD_OIDC_AUDIENCE") or DEFAULT_OIDC_AUDIENCE
        ),
        audit_retention=_retention(pick("audit_retention", "WHEELYARD_AUDIT_RETENTION")),
    )


def _retention(value: Any) -> int:
    """The audit retention in seconds: a DURATION (or seconds in TOML), positive."""
    if value is None:
        return DEFAULT_AUDIT_RETENTION
    seconds = value if isinstance(value, int) else parse_duration(str(value))
    if seconds <= 0:
        raise InvalidInput(f"invalid audit retention {value!r}: it must be positive")
    return seconds
