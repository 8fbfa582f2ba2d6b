"""Who is calling: HTTP Basic with a password, or ``__token__`` with an API token."""

from __future__ import annotations

import asyncio
import hmac
import secrets
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wheelyard.auth.permissions import Principal, Role, TokenLimits
from wheelyard.auth.tokens import parse_token, secret_matches
from wheelyard.core.names import ProjectName
from wheelyard.db.generation import UNTRACKED
from wheelyard.db.models import TokenRow, UserRow
from wheelyard.services.accounts import VerifiedPasswords, load_principal
from wheelyard.services.audit import AuditEvent, add_event
from wheelyard.services.context import ServiceContext
from wheelyard.services.throttling import LoginAttempt, LoginThrottle, ThrottlePolicy
from wheelyard.services.trusted_publishing import is_publisher_user

TOKEN_USER = "__token__"  # noqa: S105 - the user name clients send with a token
LAST_USED_RESOLUTION = timedelta(minutes=1)


class Authenticator:
    """Turns Basic credentials into a Principal, caching verified passwords safely."""

    def __init__(self, context: ServiceContext, throttle: ThrottlePolicy | None = None) -> None:
        self.context = context
        self.verified = VerifiedPasswords()
        self.throttle = LoginThrottle(throttle)
        self._dummy_hash: str | None = None

    async def _verify(self, password_hash: str, password: str) -> bool:
        """Argon2 is CPU-bound by design: run it off the event loop."""
        return await asyncio.to_thread(self.context.passwords.verify, password_hash, password)

    async def _spend_verification(self, password: str) -> None:
        """Verify against a throwaway hash so timing does not reveal which users exist."""
        if self._dummy_hash is None:
            self._dummy_hash = self.context.passwords.hash(secrets.token_urlsafe(16))
        await self._verify(self._dummy_hash, password)

    async def authenticate(
        self, username: str, password: str, address: str | None = None
    ) -> Principal | None:
        """The caller's principal, or None (and an audit event) when the credentials fail.

        Raises TooManyRequests, before any verification, while the user name or the client
        address is locked by failed logins (see ``services.throttling``).
        """
        token = parse_token(password)
        by_password = token is None and username != TOKEN_USER
        attempt = LoginAttempt.of(username if by_password else None, address)
        now = self.context.clock.now()
        async with self.context.sessions() as session:
            counted = await self.throttle.admit(session, attempt, now)
            principal = None
            if token is not None:
                principal = await self._by_token(session, username, *token)
            elif by_password:
                principal = await self._by_password(session, username, password)
            if principal is None:
                await self._fail(session, attempt, (username, password), address, now)
            elif by_password:
                await self.throttle.clear_user(session, attempt, counted)
            await session.commit()
        return principal

    async def _fail(
        self,
        session: AsyncSession,
        attempt: LoginAttempt,
        credentials: tuple[str, str],
        address: str | None,
        now: datetime,
    ) -> None:
        """Audit a failed login; count it unless these very credentials failed recently."""
        actor = logged_user_name(credentials[0])
        add_event(session, AuditEvent("login-failed", actor=actor, address=address), now)
        if not self.throttle.recent.is_new(*credentials, now):
            return
        for key in await self.throttle.count_failure(session, attempt, now):
            kind = key.split(":", 1)[0]
            event = AuditEvent("login-locked", actor=actor, address=address, detail={"by": kind})
            add_event(session, event, now)

    async def _by_password(
        self, session: AsyncSession, username: str, password: str
    ) -> Principal | None:
        user = await session.scalar(select(UserRow).where(UserRow.name == username))
        if user is None:
            await self._spend_verification(password)
            return None
        if not self.verified.known(username, password, user.password_hash):
            if not await self._verify(user.password_hash, password):
                return None
            self.verified.remember(username, password, user.password_hash)
        return await load_principal(session, user)

    async def _by_token(
        self, session: AsyncSession, username: str, token_id: str, secret: str
    ) -> Principal | None:
        row = await session.get(TokenRow, token_id)
        if row is None or not secret_matches(secret, row.secret_hash):
            return None
        now = self.context.clock.now()
        if row.expires is not None and row.expires <= now:
            return None
        user = await session.get(UserRow, row.user_id)
        if user is None or not (username == TOKEN_USER or _same_name(username, user.name)):
            return None
        await _touch(session, row, now)
        principal = await load_principal(session, user)
        return replace(principal, token=_limits(row, user))


def _same_name(given: str, name: str) -> bool:
    """Constant-time, and safe for any text (compare_digest refuses non-ASCII ``str``)."""
    return hmac.compare_digest(given.encode(), name.encode())


def logged_user_name(username: str) -> str:
    """The user name of a failed login as the audit trail keeps it: a token pasted into
    the user name field is a secret, and is never recorded."""
    return "(a token)" if parse_token(username) is not None else username[:128]


def _limits(row: TokenRow, user: UserRow) -> TokenLimits:
    return TokenLimits(
        token_id=row.id,
        repository_id=row.repository_id,
        scope=Role(row.scope) if row.scope else None,
        project=ProjectName(row.project) if row.project else None,
        expires=row.expires,
        # Tokens of trusted-publishing service users only upload (they are minted for CI).
        may_read=not is_publisher_user(user.name),
    )


async def _touch(session: AsyncSession, row: TokenRow, now: datetime) -> None:
    """Record last use, at most once a minute per token to spare the database writes."""
    if row.last_used is None or now - row.last_used >= LAST_USED_RESOLUTION:
        await session.execute(
            update(TokenRow)
            .where(TokenRow.id == row.id)
            .values(last_used=now)
            .execution_options(**{UNTRACKED: True})
        )
