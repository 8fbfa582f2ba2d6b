"""Names: normalized project names, repository-name rules, distribution filenames."""

from __future__ import annotations

import re
from typing import NewType

from packaging.utils import canonicalize_name

from wheelyard.core.errors import InvalidInput

ProjectName = NewType("ProjectName", str)
"""A PEP 503 normalized project name; produced only by :func:`normalize`."""

_VALID_PROJECT_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
_REPOSITORY_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
RESERVED_REPOSITORY_NAMES = frozenset(
    {"api", "ui", "static", "simple", "metrics", "login", "logout", "files"}
)


def normalize(name: str) -> ProjectName:
    """Return the PEP 503 normalized form of a project name."""
    return ProjectName(canonicalize_name(name))


def is_valid_project_name(name: str) -> bool:
    """True when ``name`` is a valid core-metadata project name."""
    return bool(_VALID_PROJECT_NAME.match(name))


def check_repository_name(name: str) -> str:
    """Return ``name`` if it may name a repository, otherwise raise InvalidInput."""
    if not _REPOSITORY_NAME.match(name):
        raise InvalidInput(
            f"invalid repository name {name!r}: use lowercase letters, digits, '.', '_' or '-',"
            " starting with a letter or digit, at most 64 characters"
        )
    if name in RESERVED_REPOSITORY_NAMES or name.startswith("_"):
        raise InvalidInput(f"repository name {name!r} is reserved")
    return name
