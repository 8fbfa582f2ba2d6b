"""The single error vocabulary of Wheelyard.

    WheelyardError
    ├── NotFound                 (answered 404; also used for "not readable")
    │   ├── RepositoryNotFound
    │   ├── ProjectNotFound
    │   └── FileNotFound
    ├── Unauthenticated          (401, with WWW-Authenticate)
    ├── Forbidden                (403)
    │   └── NameCollision
    ├── InvalidInput             (400 / CLI exit 1)
    │   └── InvalidDistribution
    ├── Conflict                 (409)
    ├── PayloadTooLarge          (413)
    ├── TooManyRequests          (429, with Retry-After)
    └── UpstreamUnavailable      (502)

Messages never contain secrets: they are shown to clients and written to logs.
"""

from __future__ import annotations


class WheelyardError(Exception):
    """Base class of every error Wheelyard reports to a user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(WheelyardError):
    """Something does not exist, or the caller may not know it exists."""


class RepositoryNotFound(NotFound):
    """No repository of that name."""


class ProjectNotFound(NotFound):
    """No project of that name in the repository's view."""


class FileNotFound(NotFound):
    """No file of that name in the repository's view."""


class Unauthenticated(WheelyardError):
    """Credentials are missing or wrong."""


class Forbidden(WheelyardError):
    """The caller is known but may not do this."""


class NameCollision(Forbidden):
    """A first upload of a name that an upstream already serves (dependency confusion guard)."""


class InvalidInput(WheelyardError):
    """A request or command argument is malformed or breaks a rule."""


class InvalidDistribution(InvalidInput):
    """An uploaded file is not an acceptable distribution."""


class Conflict(WheelyardError):
    """The thing already exists (a filename, a repository, a user)."""


class PayloadTooLarge(WheelyardError):
    """An upload is over the configured size limit."""


class TooManyRequests(WheelyardError):
    """Too many failed logins for a user name or a client address; retry after a while."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class UpstreamUnavailable(WheelyardError):
    """An upstream index could not be reached and nothing usable is cached."""
