"""A key echoed in an error body never leaks, not even in part: bodies are redacted before
they are shortened, and a key's first or last 8+ characters are masked too."""
from __future__ import annotations

import httpx
import pytest

from bananaflow.errors import BatchNotCompleted
from bananaflow.providers.classify import classify_response
from bananaflow.secrets import PIECE, Secret, excerpt, redact

KEY = "FAKE-ECHO-unit-key-0123456789abcdefghijkl"
Secret(KEY)  # registered, as configuration does


def pieces(text: str) -> list[str]:
    return [KEY[i : i + PIECE] for i in range(len(KEY) - PIECE + 1) if KEY[i : i + PIECE] in text]


@pytest.mark.parametrize("offset", [0, 60, 100, 110, 118, 119, 125])
def test_a_key_straddling_the_preview_limit_is_masked_whole(offset: int) -> None:
    body = ("x" * offset + f" echo of your request header x-goog-api-key: {KEY} ").encode()
    for status in (400, 502):
        error = classify_response(httpx.Response(status, content=body, headers={"content-type": "text/plain"}))
        assert pieces(error.message) == [], error.message


def test_excerpt_redacts_before_cutting_and_partial_echoes_are_masked() -> None:
    text = "y" * 110 + KEY
    assert pieces(excerpt(text, 120)) == []
    assert pieces(text[:120]) != []  # what the old cut-then-redact order leaked
    assert pieces(redact("upstream says: key starts " + KEY[:20] + "...")) == []
    assert pieces(redact("upstream says: key ends ..." + KEY[-12:])) == []
    assert redact("--retry-blocked") == "--retry-blocked"  # words inside a test key are not masked
    assert pieces(BatchNotCompleted(excerpt("task ended: " + "z" * 390 + KEY, 400)).message) == []
