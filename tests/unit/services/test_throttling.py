"""Failed-login throttling on SQLite and PostgreSQL, with a clock the tests move."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from wheelyard import config
from wheelyard.core.errors import TooManyRequests
from wheelyard.db.models import AuditRow, LoginThrottleRow
from wheelyard.services import accounts, tokens
from wheelyard.services.authentication import Authenticator
from wheelyard.services.context import ServiceContext
from wheelyard.services.throttling import (
    LoginAttempt,
    LoginThrottle,
    RecentFailures,
    ThrottlePolicy,
    purge_expired,
)
from wheelyard.wiring import open_runtime

POLICY = ThrottlePolicy(user_limit=3, address_limit=5, window=timedelta(minutes=5))


class MovableClock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
async def services(
    database_url: str, tmp_path: Path, clock: MovableClock
) -> AsyncIterator[ServiceContext]:
    settings = config.load({"data_dir": str(tmp_path), "database_url": database_url}, {})
    runtime = await open_runtime(settings)
    yield replace(runtime.services, clock=clock)
    await runtime.close()


async def fail(services: ServiceContext, throttle: LoginThrottle, attempt: LoginAttempt) -> None:
    async with services.sessions.begin() as session:
        await throttle.count_failure(session, attempt, services.clock.now())


async def admit(services: ServiceContext, throttle: LoginThrottle, attempt: LoginAttempt) -> None:
    async with services.sessions() as session:
        await throttle.admit(session, attempt, services.clock.now())


async def test_a_key_locks_at_its_limit_until_the_window_ends(
    services: ServiceContext, clock: MovableClock
) -> None:
    throttle = LoginThrottle(POLICY)
    attempt = LoginAttempt.of("alice", "10.0.0.1")
    for _ in range(POLICY.user_limit):
        await admit(services, throttle, attempt)
        await fail(services, throttle, attempt)
    clock.advance(60)
    with pytest.raises(TooManyRequests) as refused:
        await admit(services, throttle, attempt)
    assert refused.value.retry_after == 240
    await admit(services, throttle, LoginAttempt.of("bob", "10.0.0.2"))  # other keys are free
    clock.advance(240)
    await admit(services, throttle, attempt)  # the window has ended
    await fail(services, throttle, attempt)  # ... and a new one starts at 1
    async with services.sessions() as session:
        row = await session.get(LoginThrottleRow, "user:alice")
    assert row is not None
    assert (row.failures, row.window_start, row.locked_until) == (1, clock.now(), None)


async def test_the_address_has_its_own_limit(services: ServiceContext) -> None:
    throttle = LoginThrottle(POLICY)
    for number in range(POLICY.address_limit):
        await fail(services, throttle, LoginAttempt.of(f"user{number}", "10.0.0.9"))
    with pytest.raises(TooManyRequests):
        await admit(services, throttle, LoginAttempt.of("someone-new", "10.0.0.9"))
    await admit(services, throttle, LoginAttempt.of("someone-new", "10.0.0.10"))


async def test_success_clears_the_user_count_only(services: ServiceContext) -> None:
    throttle = LoginThrottle(POLICY)
    attempt = LoginAttempt.of("carol", "10.0.0.3")
    await fail(services, throttle, attempt)
    async with services.sessions.begin() as session:
        counted = await throttle.admit(session, attempt, services.clock.now())
        await throttle.clear_user(session, attempt, counted)
    async with services.sessions() as session:
        keys = set(await session.scalars(select(LoginThrottleRow.key)))
    assert keys == {"address:10.0.0.3"}


async def test_concurrent_failures_are_all_counted(services: ServiceContext) -> None:
    """Counting is one atomic statement: racing processes never lose a failure."""
    throttle = LoginThrottle(ThrottlePolicy(user_limit=100, address_limit=100))
    attempt = LoginAttempt.of("dave", None)
    await asyncio.gather(*(fail(services, throttle, attempt) for _ in range(12)))
    async with services.sessions() as session:
        row = await session.get(LoginThrottleRow, "user:dave")
    assert row is not None
    assert row.failures == 12


async def test_purge_forgets_ended_windows(services: ServiceContext, clock: MovableClock) -> None:
    throttle = LoginThrottle(POLICY)
    await fail(services, throttle, LoginAttempt.of("old", None))
    clock.advance(301)
    await fail(services, throttle, LoginAttempt.of("recent", None))
    assert await purge_expired(services, POLICY.window) == 1
    async with services.sessions() as session:
        keys = set(await session.scalars(select(LoginThrottleRow.key)))
    assert keys == {"user:recent"}


def test_recent_failures_count_the_same_credentials_once() -> None:
    recent = RecentFailures(timedelta(minutes=5))
    start = datetime(2026, 6, 1, tzinfo=UTC)
    assert recent.is_new("alice", "wrong", start)
    assert not recent.is_new("alice", "wrong", start + timedelta(minutes=1))
    assert recent.is_new("alice", "other", start + timedelta(minutes=1))
    assert recent.is_new("bob", "wrong", start + timedelta(minutes=1))
    assert recent.is_new("alice", "wrong", start + timedelta(minutes=6))


async def test_authenticator_refuses_a_locked_user_even_with_the_right_password(
    services: ServiceContext,
) -> None:
    await accounts.add_user(services, "erin", "right-password", admin=False)
    value, _ = await tokens.create_token(services, tokens.TokenRequest(user="erin"))
    authenticator = Authenticator(services, POLICY)
    for _ in range(5):  # the same wrong password again is one guess
        assert await authenticator.authenticate("erin", "wrong-0", "10.0.0.5") is None
    assert await authenticator.authenticate("erin", "right-password", "10.0.0.5") is not None
    for number in range(POLICY.user_limit):
        assert await authenticator.authenticate("erin", f"guess-{number}", "10.0.0.6") is None
    with pytest.raises(TooManyRequests):
        await authenticator.authenticate("erin", "right-password", "10.0.0.7")
    # Tokens are not password guesses: the user's lock does not stop them.
    assert await authenticator.authenticate("erin", value, "10.0.0.7") is not None
    assert await authenticator.authenticate("__token__", value, "10.0.0.7") is not None
    async with services.sessions() as session:
        locked = (
            await session.scalars(select(AuditRow).where(AuditRow.action == "login-locked"))
        ).all()
    assert [(row.actor, row.address, row.detail) for row in locked] == [
        ("erin", "10.0.0.6", {"by": "user"})
    ]
