"""Holding blob keys for a transaction, so that deleting a shared blob and referring to it
again never interleave.

A blob is shared by every stored file of the same name and content (its key is its
sha256 and filename), in any repository. Deleting one takes two steps, seeing that no
row refers to it and removing its bytes, and a new reference takes two too, storing the
bytes and committing the row. Unguarded, a row committed between the deletion's check
and its removal would be left without its bytes. So both run their steps while holding
the keys: the deletion checks and removes under them, and a new row is committed under
them after seeing its bytes are (still, or again) there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_PG_NAMESPACE = 0x7779_626B
"""First half of the two-key form of PostgreSQL's advisory locks, whose key space does not
overlap the one-key form the migrations lock with."""


def _lock_key(blob_key: str) -> int:
    """A signed 32-bit number for ``blob_key``; keys sharing one only wait for each other."""
    return int.from_bytes(hashlib.sha256(blob_key.encode()).digest()[:4], "big", signed=True)


async def hold_blob_keys(session: AsyncSession, keys: Iterable[str]) -> None:
    """Hold ``keys`` until the session's transaction ends; waits while another holds one.

    Must be the transaction's first statement. PostgreSQL takes an advisory lock per key
    (in one order, so that two holders never deadlock); SQLite takes its write lock, which
    holds every key at once.
    """
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        await session.execute(text("BEGIN IMMEDIATE"))
        return
    for lock_key in sorted({_lock_key(key) for key in keys}):
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, :key)"),
            {"namespace": _PG_NAMESPACE, "key": lock_key},
        )
