"""LruMemo: bounded, least recently used first out, None values kept."""

from __future__ import annotations

from wheelyard.core.lru import LruMemo


def test_the_least_recently_used_entry_goes_first() -> None:
    memo: LruMemo[int] = LruMemo(2)
    memo.put("a", 1)
    memo.put("b", 2)
    assert memo.get("a") == 1  # "b" is now the least recently used
    memo.put("c", 3)
    assert "b" not in memo
    assert memo.get("a") == 1
    assert memo.get("c") == 3


def test_a_none_value_is_kept_and_clear_empties() -> None:
    memo: LruMemo[int | None] = LruMemo(4)
    memo.put("none", None)
    assert "none" in memo
    assert memo.get("none") is None
    assert memo.get("missing") is None
    assert "missing" not in memo
    memo.clear()
    assert "none" not in memo
