"""schemathesis against the live server's OpenAPI document: no input gives a server error.

Every operation is fuzzed with valid (positive) and invalid (negative) requests, as a
global administrator, a bounded number of examples each. Path parameters are sometimes
swapped for names that exist (a repository, a project, a version, a user), so the use
cases themselves run, not only the validation in front of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.builders import make_wheel
from tests.integration.server import Server

API = "/api/v1"
FUZZER = ("fuzzer", "fuzzer-password")
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 8}
WHEEL = "fuzz_pkg-1.0-py3-none-any.whl"
KNOWN = {"project": "fuzz-pkg", "version": "1.0", "user": "fuzz-user", "filename": WHEEL}
REPOSITORIES = ["fuzz-hosted", "fuzz-hosted", "fuzz-proxy", "main"]


def _upload(server: Server, wheel: Path) -> None:
    content = wheel.read_bytes()
    fields = {
        ":action": "file_upload",
        "name": "fuzz-pkg",
        "version": "1.0",
        "filetype": "bdist_wheel",
        "sha256_digest": hashlib.sha256(content).hexdigest(),
    }
    with server.client(server.admin) as client:
        response = client.post(
            "/fuzz-hosted/", data=fields, files={"content": (wheel.name, content)}
        )
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def fuzzed(server: Server, dists: Path) -> Iterator[requests.Session]:
    """A global admin of its own (the fuzzer may change the ``admin`` account) and known names."""
    with server.client(server.admin) as client:
        for path, body in [
            ("/users", {"name": FUZZER[0], "password": FUZZER[1], "admin": True}),
            ("/users", {"name": "fuzz-user", "password": "fuzz-user-password"}),
            ("/repositories", {"name": "fuzz-hosted", "kind": "hosted"}),
            ("/repositories", {"name": "fuzz-proxy", "kind": "proxy", "offline": True}),
        ]:
            assert client.post(API + path, json=body).status_code == 201
    _upload(server, make_wheel(dists, "fuzz-pkg", "1.0"))
    session = requests.Session()
    session.auth = FUZZER
    yield session
    session.close()


def _with_known_names(case: Any, data: st.DataObject) -> None:
    """Three times in four, name things that exist, so requests get past "not found"."""
    parameters = case.path_parameters or {}
    if not parameters or data.draw(st.integers(0, 3)) == 0:
        return
    known = {**KNOWN, "repo": data.draw(st.sampled_from(REPOSITORIES))}
    for name in parameters:
        if name in known:
            parameters[name] = known[name]


def test_no_server_errors(server: Server, fuzzed: requests.Session) -> None:
    schema = schemathesis.openapi.from_url(server.url + API + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    # Deletions last, the deepest first: until then the named things exist.
    operations.sort(key=lambda op: (op.method.upper() == "DELETE", -op.path.count("/")))
    for operation in operations:
        for mode, examples in EXAMPLES.items():
            _fuzz(operation, mode, examples, server.url + API, fuzzed)


def _fuzz(
    operation: Any, mode: GenerationMode, examples: int, base_url: str, session: requests.Session
) -> None:
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any, data: st.DataObject) -> None:
        _with_known_names(case, data)
        response = case.call(base_url=base_url, session=session, timeout=30)
        case.validate_response(response, checks=[not_a_server_error])

    fuzz()
