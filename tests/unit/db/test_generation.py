"""The catalog generation rises with served changes, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wheelyard.db.generation import GenerationReader, open_generation_reader
from wheelyard.services import accounts, audit, tokens
from wheelyard.services.authentication import Authenticator
from wheelyard.wiring import Runtime


@pytest.fixture
def reader(runtime: Runtime) -> Iterator[GenerationReader]:
    opened = open_generation_reader(runtime.settings.database_url, runtime.engine)
    yield opened
    opened.close()


async def test_served_changes_raise_it(runtime: Runtime, reader: GenerationReader) -> None:
    start = await reader.current()
    await accounts.add_user(runtime.services, "bob", "password-1", admin=False)
    after_add = await reader.current()
    assert after_add > start
    await accounts.set_password(runtime.services, "bob", "password-2")
    assert await reader.current() > after_add


async def test_audit_events_and_token_use_do_not(
    runtime: Runtime, reader: GenerationReader
) -> None:
    await accounts.add_user(runtime.services, "bob", "password-1", admin=False)
    value, _ = await tokens.create_token(runtime.services, tokens.TokenRequest(user="bob"))
    before = await reader.current()
    await audit.record(runtime.services, audit.AuditEvent("download", actor="bob"))
    authenticator = Authenticator(runtime.services)
    assert await authenticator.authenticate("__token__", value) is not None
    assert await authenticator.authenticate("bob", "wrong-password") is None
    assert await reader.current() == before


async def test_a_failed_transaction_does_not(runtime: Runtime, reader: GenerationReader) -> None:
    await accounts.add_user(runtime.services, "bob", "password-1", admin=False)
    before = await reader.current()
    with pytest.raises(Exception, match="already exists"):
        await accounts.add_user(runtime.services, "bob", "password-1", admin=False)
    assert await reader.current() == before
