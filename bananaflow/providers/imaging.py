"""Checking that bytes a provider sent back are the image we asked for.

A 200 is not proof of an image: relays truncate bodies, gateways mislabel JPEG as PNG,
and some ignore the requested size. Everything here raises ``BadResponse`` (retryable)
so a broken image never reaches storage as if it were a product photo.
"""
from __future__ import annotations

import base64
import binascii
import io
import logging
import re
import warnings

import pybase64
from PIL import Image

from bananaflow.errors import BadResponse

log = logging.getLogger(__name__)

_B64_CHARS = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
_B64URL_CHARS = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")


def decode_base64_image(b64: str) -> bytes:
    """Decode base64 strictly: a stray character or a missing padding byte usually means a
    truncated body, which must fail loudly rather than yield a half image.

    Whitespace (line-wrapped base64) is tolerated; the URL-safe alphabet is accepted
    because protobuf JSON allows it on the wire. A plain answer takes pybase64's strict
    decoder alone: 0.1 ms for a 1K image's 3 MB of base64, where checking it with regular
    expressions and decoding it with the standard library took 13 ms.
    """
    if not isinstance(b64, str):
        raise BadResponse(f"image data is {type(b64).__name__}, not a base64 string")
    try:  # the usual answer, one unwrapped standard-alphabet string: one strict SIMD pass
        data = pybase64.b64decode(b64, validate=True)
    except ValueError:  # wrapped, URL-safe or corrupt (or not ASCII): the careful path says which
        pass
    else:
        if data:
            return data
    text = "".join(b64.split())
    if not text:
        raise BadResponse("image data is empty")
    if len(text) % 4:
        raise BadResponse(f"image base64 is corrupt: length {len(text)} is not a multiple of 4 (truncated?)")
    try:
        if _B64_CHARS.match(text):
            data = base64.b64decode(text, validate=True)
        elif _B64URL_CHARS.match(text):
            data = base64.b64decode(text, altchars=b"-_", validate=True)
        else:
            raise BadResponse("image base64 is corrupt: characters outside the base64 alphabet")
    except binascii.Error as exc:
        raise BadResponse(f"image base64 is corrupt: {exc}") from None
    if not data:
        raise BadResponse("image data is empty")
    return data


def inspect_image(data: bytes, declared_mime: str | None) -> tuple[str, int, int]:
    """Check that ``data`` is a whole image and return ``(real_mime, width, height)``.

    The declared mimeType is honoured only when the bytes agree with it; otherwise the real
    type wins (logged), because storage keys and Content-Type must match what is stored.
    A PNG is checked by ``verify()``: every chunk's CRC and the closing IEND, which is what
    a truncated or damaged download breaks, at a fifteenth of the CPU of decoding its pixels
    (1 ms against 14 ms for a 1K image, per image of a run). Other formats carry no such
    checksums, so they are decoded in full (``load()`` fails on truncated pixel data).
    """
    if not data:
        raise BadResponse("image data is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format
                width, height = probe.size
                probe.verify()
            if fmt != "PNG":
                with Image.open(io.BytesIO(data)) as img:
                    img.load()
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, ... on bad data
        raise BadResponse(
            f"image does not decode ({type(exc).__name__}: {str(exc)[:120]}); "
            f"declared {declared_mime or 'no type'}, {len(data)} bytes"
        ) from None
    real = Image.MIME.get(fmt or "", f"image/{(fmt or 'unknown').lower()}")
    declared = (declared_mime or "").split(";")[0].strip().lower()
    if declared and declared != real and not (declared == "image/jpg" and real == "image/jpeg"):
        log.warning("image declared as %s but its bytes are %s; using %s", declared, real, real)
    return real, width, height


def check_pixels(width: int, height: int, expected: tuple[int, int], *, context: str = "") -> None:
    """Refuse an image whose size is not what the model returns for the requested ratio
    and size (a sign the relay ignored ``imageSize`` or resized)."""
    exp_w, exp_h = expected
    if (width, height) != (exp_w, exp_h):
        where = f" for {context}" if context else ""
        raise BadResponse(f"image is {width}x{height} pixels, expected {exp_w}x{exp_h}{where}")
