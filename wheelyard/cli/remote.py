"""The remote backend: the same use cases through a server's ``/api/v1``, as a token's user.

Security: the token goes only into the Authorization header; it is never printed, put in
a URL or in an error message. Errors come back as the server's one-line ``detail``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from wheelyard import __version__
from wheelyard.cli.backend import Record
from wheelyard.cli.common import fail, to_jsonable
from wheelyard.telemetry.logging import redact_url

API_PREFIX = "/api/v1"
TIMEOUT = 60.0
_DATETIME_KEYS = ("snapshot", "expires", "created", "last_used")
_TOKEN_HINT = "give an API token with --token or WHEELYARD_TOKEN"  # noqa: S105 - advice


def _segment(value: str) -> str:
    """One path segment: a name can never add or climb path levels."""
    return quote(value, safe="")


def _revived(value: Any) -> Any:
    """Records as the local backend returns them: instants as datetimes again."""
    if isinstance(value, list):
        return [_revived(item) for item in value]
    if isinstance(value, dict):
        return {
            key: datetime.fromisoformat(item)
            if key in _DATETIME_KEYS and isinstance(item, str)
            else item
            for key, item in value.items()
        }
    return value


def _one_line(text: str) -> str:
    return " ".join(text.split())


class RemoteBackend:
    """Calls the management API of ``server`` with HTTP Basic ``__token__:<token>``."""

    def __init__(self, server: str, token: str | None) -> None:
        self.server = server.rstrip("/")
        self._auth = ("__token__", token) if token else None

    def _call(
        self,
        method: str,
        path: str,
        body: Record | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """One request; any failure ends the command with one ``error:`` line (status 1)."""
        try:
            with httpx.Client(
                base_url=self.server + API_PREFIX,
                auth=self._auth,
                timeout=TIMEOUT,
                headers={"User-Agent": f"wheelyard-cli/{__version__}"},
            ) as client:
                response = client.request(
                    method,
                    path,
                    json=to_jsonable(body) if body is not None else None,
                    params=params,
                )
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            reason = _one_line(str(error)) or type(error).__name__
            fail(f"cannot reach {redact_url(self.server)}: {reason}")
        return self._result(response)

    def _result(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            fail(self._problem(response))
        if response.status_code == 204 or not response.content:
            return None
        try:
            return _revived(response.json())
        except ValueError:
            fail(f"{redact_url(self.server)} did not answer with JSON: is it a Wheelyard server?")

    def _problem(self, response: httpx.Response) -> str:
        try:
            detail = response.json().get("detail")
        except (ValueError, AttributeError):
            detail = None
        message = _one_line(detail) if isinstance(detail, str) and detail else None
        message = message or f"the server answered {response.status_code} {response.reason_phrase}"
        if response.status_code == 401:
            return f"{message} ({_TOKEN_HINT})"
        return message

    # Repositories

    def list_repositories(self) -> list[Record]:
        result: list[Record] = self._call("GET", "/repositories")
        return result

    def show_repository(self, name: str) -> Record:
        result: Record = self._call("GET", f"/repositories/{_segment(name)}")
        return result

    def create_repository(self, name: str, kind: str, options: Record) -> Record:
        result: Record = self._call(
            "POST", "/repositories", {"name": name, "kind": kind, **options}
        )
        return result

    def update_repository(self, name: str, options: Record) -> Record:
        result: Record = self._call("PATCH", f"/repositories/{_segment(name)}", options)
        return result

    def delete_repository(self, name: str) -> None:
        self._call("DELETE", f"/repositories/{_segment(name)}")

    def claim_project(self, repository: str, project: str) -> None:
        self._call("POST", f"/repositories/{_segment(repository)}/claims", {"project": project})

    # Users and roles

    def list_users(self) -> list[Record]:
        result: list[Record] = self._call("GET", "/users")
        return result

    def add_user(self, name: str, password: str, admin: bool) -> Record:
        body = {"name": name, "password": password, "admin": admin}
        result: Record = self._call("POST", "/users", body)
        return result

    def set_password(self, name: str, password: str) -> None:
        self._call("PUT", f"/users/{_segment(name)}/password", {"password": password})

    def remove_user(self, name: str) -> None:
        self._call("DELETE", f"/users/{_segment(name)}")

    def _role_path(self, user: str, repository: str) -> str:
        return f"/repositories/{_segment(repository)}/roles/{_segment(user)}"

    def grant(self, user: str, repository: str, role: str) -> None:
        self._call("PUT", self._role_path(user, repository), {"role": role})

    def revoke(self, user: str, repository: str) -> None:
        self._call("DELETE", self._role_path(user, repository))

    # Tokens

    def create_token(self, user: str, limits: Record) -> str:
        given = {key: value for key, value in limits.items() if value is not None}
        created = self._call("POST", f"/users/{_segment(user)}/tokens", given)
        value: str = created["token"]
        return value

    def list_tokens(self, user: str) -> list[Record]:
        result: list[Record] = self._call("GET", f"/users/{_segment(user)}/tokens")
        return result

    def revoke_token(self, token_id: str) -> None:
        self._call("DELETE", f"/tokens/{_segment(token_id)}")

    # Projects

    def _project_path(self, repository: str, project: str) -> str:
        return f"/repositories/{_segment(repository)}/projects/{_segment(project)}"

    def _yank_path(self, repository: str, project: str, version: str) -> str:
        return f"{self._project_path(repository, project)}/versions/{_segment(version)}/yank"

    def yank(self, repository: str, project: str, version: str, reason: str) -> None:
        self._call("PUT", self._yank_path(repository, project, version), {"reason": reason})

    def unyank(self, repository: str, project: str, version: str) -> None:
        self._call("DELETE", self._yank_path(repository, project, version))

    def set_status(self, repository: str, project: str, status: str, reason: str) -> None:
        body = {"status": status, "reason": reason}
        self._call("PUT", f"{self._project_path(repository, project)}/status", body)

    def delete_files(
        self, repository: str, project: str, version: str | None, filename: str | None
    ) -> int:
        path = self._project_path(repository, project)
        if version is not None:
            path += f"/versions/{_segment(version)}"
        if filename is not None:
            path += f"/files/{_segment(filename)}"
        deleted: int = self._call("DELETE", path)["deleted"]
        return deleted

    def list_members(self, repository: str, project: str) -> list[Record]:
        result: list[Record] = self._call(
            "GET", f"{self._project_path(repository, project)}/members"
        )
        return result

    def _member_path(self, repository: str, project: str, user: str) -> str:
        return f"{self._project_path(repository, project)}/members/{_segment(user)}"

    def add_maintainer(self, repository: str, project: str, user: str, owner: bool) -> None:
        role = "owner" if owner else "maintainer"
        self._call("PUT", self._member_path(repository, project, user), {"role": role})

    def remove_maintainer(self, repository: str, project: str, user: str) -> None:
        self._call("DELETE", self._member_path(repository, project, user))

    # Audit

    def audit_events(self, query: Record) -> list[Record]:
        params = {key: value for key, value in to_jsonable(query).items() if value is not None}
        result: list[Record] = self._call("GET", "/audit", params=params)
        return result
