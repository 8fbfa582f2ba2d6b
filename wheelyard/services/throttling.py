"""Failed-login throttling per user name and per client address, shared by every process.

Counts live in the ``login_throttle`` table (untracked by the catalog generation), so every
server process and replica sees the same ones. The policy:

- A key (a user name, a client address) that collects ``limit`` failures within a window
  (5 minutes from its first failure) is locked until that window ends: every login
  attempt for it is answered 429 with ``Retry-After``, even with the right password, and
  costs no password verification. Limits: 10 failures per user name, 50 per address.
- Password logins count toward both keys. Token logins (and ``__token__`` with anything)
  count toward the address only: guessing a 256-bit token is hopeless, and a user whose
  password is being guessed keeps using their tokens.
- Only distinct credentials count: the same wrong user name and password sent again
  within the window (a client retrying, pip fetching pages in parallel) is one guess, not
  many ("smart lockout"). This process remembers an HMAC of them under a random key,
  never the password; several processes may each count the same guess once.
- A successful password login clears its user name's count, never the address's.
- Credentials a server process has already verified (its memo of principals) are not
  checked here: the hot path never reads this table.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Insert, Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wheelyard.core.errors import TooManyRequests
from wheelyard.db.models import LoginThrottleRow
from wheelyard.services.context import ServiceContext

_THROTTLE: Table = LoginThrottleRow.__table__  # type: ignore[assignment]
_MAX_NAME = 200  # the key column holds 255 characters


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many failures a key may collect in one window before it is locked."""

    user_limit: int = 10
    address_limit: int = 50
    window: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class LoginAttempt:
    """The keys one login attempt counts toward."""

    user_key: str | None
    address_key: str | None

    @classmethod
    def of(cls, username: str | None, address: str | None) -> LoginAttempt:
        """``username`` None: a token login, counted per address only."""
        return cls(
            f"user:{username[:_MAX_NAME]}" if username is not None else None,
            f"address:{address[:_MAX_NAME]}" if address else None,
        )

    def keys(self) -> list[str]:
        return [key for key in (self.user_key, self.address_key) if key is not None]


class RecentFailures:
    """Credentials that failed recently in this process (as HMACs under a random key)."""

    def __init__(self, window: timedelta, capacity: int = 10_000) -> None:
        self._key = secrets.token_bytes(32)
        self._window = window
        self._capacity = capacity
        self._seen: OrderedDict[bytes, datetime] = OrderedDict()

    def is_new(self, username: str, password: str, now: datetime) -> bool:
        """Whether these credentials have not failed within the window (and remember them)."""
        message = username.encode() + b"\x00" + password.encode()
        fingerprint = hmac.new(self._key, message, hashlib.sha256).digest()
        seen = self._seen.pop(fingerprint, None)
        if seen is not None and now - seen < self._window:
            self._seen[fingerprint] = seen  # the same guess again, within its window
            return False
        self._seen[fingerprint] = now
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True


class LoginThrottle:
    """Refuses logins for locked keys and counts failures, in the caller's transaction."""

    def __init__(self, policy: ThrottlePolicy | None = None) -> None:
        self.policy = policy or ThrottlePolicy()
        self.recent = RecentFailures(self.policy.window)

    async def admit(self, session: AsyncSession, attempt: LoginAttempt, now: datetime) -> set[str]:
        """Raise TooManyRequests if a key of ``attempt`` is locked; return the counted keys."""
        rows = (
            await session.execute(
                select(LoginThrottleRow.key, LoginThrottleRow.locked_until).where(
                    LoginThrottleRow.key.in_(attempt.keys())
                )
            )
        ).all()
        locks = [until for _, until in rows if until is not None and until > now]
        if locks:
            wait = math.ceil((max(locks) - now).total_seconds())
            raise TooManyRequests(
                f"too many failed logins; try again in {wait} seconds", retry_after=wait
            )
        return {key for key, _ in rows}

    async def count_failure(
        self, session: AsyncSession, attempt: LoginAttempt, now: datetime
    ) -> list[str]:
        """Count one failure toward each key; returns the keys this failure locked."""
        locked = []
        for key, limit in self._limits(attempt):
            failures, window_start = await _count(session, key, now, self.policy.window)
            if failures >= limit:
                await session.execute(
                    update(_THROTTLE)
                    .where(_THROTTLE.c.key == key)
                    .values(locked_until=window_start + self.policy.window)
                )
            if failures == limit:
                locked.append(key)
        return locked

    async def clear_user(
        self, session: AsyncSession, attempt: LoginAttempt, counted: set[str]
    ) -> None:
        """After a successful password login: forget its user name's failures."""
        if attempt.user_key is not None and attempt.user_key in counted:
            await session.execute(delete(_THROTTLE).where(_THROTTLE.c.key == attempt.user_key))

    def _limits(self, attempt: LoginAttempt) -> list[tuple[str, int]]:
        pairs = [(attempt.user_key, self.policy.user_limit)]
        pairs.append((attempt.address_key, self.policy.address_limit))
        return [(key, limit) for key, limit in pairs if key is not None]


async def _count(
    session: AsyncSession, key: str, now: datetime, window: timedelta
) -> tuple[int, datetime]:
    """Add one failure to ``key`` atomically, starting a new window when the last one ended.

    Single statements only (no read-modify-write), so concurrent processes never lose a
    count; the loop settles the race of two first failures of the same key.
    """
    cutoff = now - window
    for _ in range(3):
        counted = await session.execute(
            update(_THROTTLE)
            .where(_THROTTLE.c.key == key, _THROTTLE.c.window_start > cutoff)
            .values(failures=_THROTTLE.c.failures + 1)
            .returning(_THROTTLE.c.failures, _THROTTLE.c.window_start)
        )
        row = counted.first()
        if row is not None:
            return int(row[0]), row[1]
        restarted = await session.execute(
            update(_THROTTLE)
            .where(_THROTTLE.c.key == key, _THROTTLE.c.window_start <= cutoff)
            .values(failures=1, window_start=now, locked_until=None)
            .returning(_THROTTLE.c.key)
        )
        if restarted.first() is not None:
            return 1, now
        inserted = await session.execute(_insert_first(session, key, now))
        if inserted.first() is not None:  # RETURNING: no row when another process was first
            return 1, now
    raise AssertionError("the failure count of a key could not be settled")


def _insert_first(session: AsyncSession, key: str, now: datetime) -> Insert:
    """INSERT of a key's first failure that does nothing when another process was first."""
    values = {"key": key, "failures": 1, "window_start": now, "locked_until": None}
    # Each dialect's module is imported only where it is used (memory of every process).
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        pg_insert = postgresql.insert(_THROTTLE).values(values).on_conflict_do_nothing()
        return pg_insert.returning(_THROTTLE.c.key)
    from sqlalchemy.dialects import sqlite

    sqlite_insert = sqlite.insert(_THROTTLE).values(values).on_conflict_do_nothing()
    return sqlite_insert.returning(_THROTTLE.c.key)


async def purge_expired(context: ServiceContext, window: timedelta | None = None) -> int:
    """Delete counts whose window has ended (locks end with their window)."""
    cutoff = context.clock.now() - (window or ThrottlePolicy().window)
    async with context.sessions.begin() as session:
        result = await session.execute(delete(_THROTTLE).where(_THROTTLE.c.window_start <= cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
