"""Image verification: real Pillow-made bytes, and the ways a 200 can still be broken."""
from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from bananaflow.errors import BadResponse
from bananaflow.providers.imaging import check_pixels, decode_base64_image, inspect_image


def make_image(width: int = 16, height: int = 8, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 180, 20)).save(buf, format=fmt)
    return buf.getvalue()


def test_png_real_mime_and_size() -> None:
    assert inspect_image(make_image(16, 8), "image/png") == ("image/png", 16, 8)


def test_jpeg_declared_as_png_reports_real_type(caplog: pytest.LogCaptureFixture) -> None:
    mime, w, h = inspect_image(make_image(10, 20, "JPEG"), "image/png")
    assert (mime, w, h) == ("image/jpeg", 10, 20)
    assert "image/png" in caplog.text and "image/jpeg" in caplog.text


def test_no_declared_type_is_fine() -> None:
    assert inspect_image(make_image(4, 4, "JPEG"), None)[0] == "image/jpeg"


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", make_image(64, 64)[:60], make_image(64, 64, "JPEG")[:200]],
    ids=["empty", "garbage", "truncated-png", "truncated-jpeg"],
)
def test_undecodable_bytes_are_bad_response(data: bytes) -> None:
    with pytest.raises(BadResponse):
        inspect_image(data, "image/png")


def test_decode_base64_roundtrip_and_whitespace() -> None:
    raw = make_image()
    text = base64.b64encode(raw).decode()
    assert decode_base64_image(text) == raw
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    assert decode_base64_image(wrapped) == raw
    assert decode_base64_image(base64.urlsafe_b64encode(raw).decode()) == raw


@pytest.mark.parametrize("text", ["", "abc", "ab$d", "YWJj=ZGVm", "!!!!", "YWJj\u00e9ZGVm", "YWJjZA==="])
def test_corrupt_base64_is_bad_response(text: str) -> None:
    with pytest.raises(BadResponse):
        decode_base64_image(text)


def test_truncated_base64_is_bad_response() -> None:
    text = base64.b64encode(make_image()).decode()
    with pytest.raises(BadResponse, match="base64"):
        decode_base64_image(text[:-3])


def test_check_pixels_names_both_sizes() -> None:
    check_pixels(2048, 2048, (2048, 2048))
    with pytest.raises(BadResponse, match=r"1024x1024.*2048x2048"):
        check_pixels(1024, 1024, (2048, 2048))


def noisy_png(side: int = 128) -> bytes:
    """Incompressible pixels: the image data spans many bytes, as a real model's does."""
    buf = io.BytesIO()
    Image.frombytes("RGB", (side, side), bytes((i * 7919) % 251 for i in range(side * side * 3))).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, -12], ids=["10%", "half", "90%", "no-IEND"])
def test_a_png_cut_anywhere_is_bad_response(cut: float) -> None:
    data = noisy_png()
    end = int(len(data) * cut) if cut > 0 else len(data) + int(cut)
    with pytest.raises(BadResponse, match="does not decode"):
        inspect_image(data[:end], "image/png")


@pytest.mark.parametrize("where", [0.3, 0.6, 0.95])
def test_a_png_with_a_damaged_byte_in_its_pixels_is_bad_response(where: float) -> None:
    data = bytearray(noisy_png())
    data[int(len(data) * where)] ^= 0x40  # the chunk's CRC no longer matches
    with pytest.raises(BadResponse, match="does not decode"):
        inspect_image(bytes(data), "image/png")


def test_a_png_too_large_to_decode_safely_is_bad_response() -> None:
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, "PNG")  # 400 Mpx: over Pillow's bomb limit
    with pytest.raises(BadResponse):
        inspect_image(buf.getvalue(), "image/png")
