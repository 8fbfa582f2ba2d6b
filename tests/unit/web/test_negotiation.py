"""PEP 691 content negotiation."""

from __future__ import annotations

import pytest

from wheelyard.core.serialize import HTML_CONTENT_TYPE, JSON_CONTENT_TYPE, LEGACY_HTML_CONTENT_TYPE
from wheelyard.web.negotiation import choose_content_type


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON_CONTENT_TYPE),
        ("", JSON_CONTENT_TYPE),
        ("*/*", JSON_CONTENT_TYPE),
        ("text/html", LEGACY_HTML_CONTENT_TYPE),
        ("application/vnd.pypi.simple.v1+html", HTML_CONTENT_TYPE),
        ("application/vnd.pypi.simple.latest+json", JSON_CONTENT_TYPE),
        ("application/vnd.pypi.simple.latest+html", HTML_CONTENT_TYPE),
        # pip's header: JSON preferred, HTML accepted at lower quality.
        (
            "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1,"
            " text/html; q=0.01",
            JSON_CONTENT_TYPE,
        ),
        ("application/vnd.pypi.simple.v1+json;q=0.2, text/html", LEGACY_HTML_CONTENT_TYPE),
        ("text/*;q=0.5, application/vnd.pypi.simple.v1+json;q=0.4", LEGACY_HTML_CONTENT_TYPE),
        ("text/html;q=0, */*;q=0.1", JSON_CONTENT_TYPE),
        ("application/*", JSON_CONTENT_TYPE),
    ],
)
def test_chooses_by_quality_then_server_preference(accept: str | None, expected: str) -> None:
    assert choose_content_type(accept) == expected


@pytest.mark.parametrize("accept", ["text/plain", "image/png, application/xml", "text/html;q=0"])
def test_nothing_acceptable_is_none(accept: str) -> None:
    assert choose_content_type(accept) is None


def test_malformed_quality_counts_as_zero() -> None:
    assert choose_content_type("text/html;q=abc") is None


def test_format_parameter_overrides_accept() -> None:
    assert choose_content_type("text/html", JSON_CONTENT_TYPE) == JSON_CONTENT_TYPE
    assert choose_content_type(None, "text/html") == LEGACY_HTML_CONTENT_TYPE
    assert choose_content_type(None, "application/xml") is None
