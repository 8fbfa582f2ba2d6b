"""PEP 691 content negotiation: Accept with q-values, ``?format=`` override, 406."""

from __future__ import annotations

from functools import lru_cache

from wheelyard.core.serialize import HTML_CONTENT_TYPE, JSON_CONTENT_TYPE, LEGACY_HTML_CONTENT_TYPE

# Server preference when the client ranks several types equally: JSON is the primary form.
SUPPORTED = (JSON_CONTENT_TYPE, HTML_CONTENT_TYPE, LEGACY_HTML_CONTENT_TYPE)
_ALIASES = {
    "application/vnd.pypi.simple.latest+json": JSON_CONTENT_TYPE,
    "application/vnd.pypi.simple.latest+html": HTML_CONTENT_TYPE,
}


def _parse_accept(header: str) -> list[tuple[str, float]]:
    ranges: list[tuple[str, float]] = []
    for part in header.split(","):
        media, *parameters = (piece.strip() for piece in part.split(";"))
        if not media:
            continue
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = max(0.0, min(1.0, float(value)))
                except ValueError:
                    quality = 0.0
        ranges.append((_ALIASES.get(media.lower(), media.lower()), quality))
    return ranges


def _match(candidate: str, media_range: str) -> int:
    """Specificity of the match (3 exact, 2 type/*, 1 */*), 0 when it does not match."""
    if media_range == candidate:
        return 3
    if media_range == "*/*":
        return 1
    kind, _, subtype = media_range.partition("/")
    return 2 if subtype == "*" and candidate.startswith(kind + "/") else 0


def _quality(candidate: str, ranges: list[tuple[str, float]]) -> float:
    best_specificity, quality = 0, 0.0
    for media_range, range_quality in ranges:
        specificity = _match(candidate, media_range)
        if specificity > best_specificity:
            best_specificity, quality = specificity, range_quality
    return quality


@lru_cache(maxsize=1024)
def choose_content_type(accept: str | None, format_override: str | None = None) -> str | None:
    """The content type to answer with, or None when nothing acceptable is offered (406).

    Memoized: clients send the same few Accept headers again and again.
    """
    if format_override:
        chosen = _ALIASES.get(format_override, format_override)
        return chosen if chosen in SUPPORTED else None
    if not accept:
        return JSON_CONTENT_TYPE  # PEP 691: no Accept header means */*
    ranges = _parse_accept(accept)
    scored = [
        (_quality(candidate, ranges), -rank, candidate) for rank, candidate in enumerate(SUPPORTED)
    ]
    quality, _, candidate = max(scored)
    return candidate if quality > 0 else None
