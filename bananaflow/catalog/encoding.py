"""Catalog bytes to text without ever garbling them.

Shops send UTF-8 (with or without a BOM), Excel's "Unicode Text" (UTF-16), Excel's default
"CSV (Comma delimited)" on Western Windows (cp1252) and GBK/GB18030 from Chinese Windows.
A cp1252 file often *decodes* as GB18030 too: an accented byte followed by an ASCII letter
is a valid two-byte character (``Herm鑣``). Decoding without error proves nothing, so a file
that is not UTF-8 goes through a detector (charset-normalizer) *and* a plausibility check
of the text each candidate would give; a file where the two do not agree on one encoding is
refused with one line naming the ``--encoding`` to pass, never read as mojibake.
"""
from __future__ import annotations

import codecs
import unicodedata
from collections.abc import Iterator

from bananaflow.errors import CatalogError

#: Bytes of lines with non-ASCII bytes handed to the detector and the plausibility check.
_SAMPLE_BYTES = 256 * 1024
#: What a Western spreadsheet has besides letters: currency, quotes, dashes, marks, fractions.
_LATIN_SYMBOLS = set("€£¥¢°´`×÷©®™–—‘’‚“”„…·•«»§¶¹²³½¼¾±µ¿¡ªº¨¯¸¦¬†‡‰‹›ˆ˜\xa0\xad")
_GB_ALIASES = ("gbk", "gb2312", "cp936", "gb18030", "936", "euccn", "hz")


def normalise_name(encoding: str) -> str:
    """A user's encoding name as Python's codec; GBK and GB2312 read as their superset GB18030."""
    key = encoding.lower().replace("-", "").replace("_", "")
    if key in _GB_ALIASES:
        return "gb18030"
    try:
        codec = codecs.lookup(encoding).name
        "a".encode(codec)  # refuses codecs that are not text encodings (rot13, base64)
        return codec
    except LookupError:
        raise CatalogError(f"unknown encoding {encoding!r}; pass e.g. --encoding cp1252, gb18030 or utf-8") from None


def decode_catalog(data: bytes, name: str, encoding: str | None) -> str:
    """UTF-8 (BOM or not) or UTF-16 with a BOM; otherwise the one encoding both the detector
    and the plausibility check agree on; otherwise one line asking for ``--encoding``."""
    return _decode_strict(data, name, text_encoding(data, name, encoding))


def text_encoding(data: bytes, name: str, encoding: str | None) -> str:
    """The codec ``decode_catalog`` reads ``data`` with, found without building the text
    (a 100 MB export is checked for UTF-8 a slice at a time). Always one Python knows: a
    name the user gives is checked by ``normalise_name``, and detection only answers
    cp1252 or GB18030."""
    if encoding:
        return normalise_name(encoding)
    if data[:3] == codecs.BOM_UTF8:
        return "utf-8-sig"
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "utf-16"
    if b"\x00" in data[:65536]:
        bom_less = _utf16_without_bom(data[:4096])
        if bom_less:
            return bom_less
        raise CatalogError(f"{name} is not a text catalog (it contains NUL bytes); expected CSV, TSV, JSONL or Parquet")
    first_bad = _first_non_utf8(data)
    return "utf-8" if first_bad is None else detect(data, name, first_bad)


#: Bytes decoded at a time when text is checked or read a slice at a time.
_STEP = 1 << 20


def _first_non_utf8(data: bytes) -> int | None:
    """Offset of the first byte that is not UTF-8, or None. Slices end after a newline, which
    is never part of a multi-byte UTF-8 character, so no character spans two slices."""
    view = memoryview(data)
    start = 0
    while start < len(data):
        end = data.find(b"\n", start + _STEP)
        end = len(data) if end < 0 else end + 1
        try:
            codecs.utf_8_decode(view[start:end], "strict", True)
        except UnicodeDecodeError as exc:
            return start + exc.start
        start = end
    return None


class DecodedLines:
    """The lines of a text catalog (ends kept, split on "\n" only, as ``newline=""`` reads),
    decoded a slice at a time: reading a 100 MB export holds its bytes, not a text copy of
    them, which costs one to four bytes a character. A byte the codec refuses raises the
    same one-line ``CatalogError`` as ``decode_catalog``."""

    def __init__(self, data: bytes, name: str, encoding: str | None) -> None:
        self.data, self.name = data, name
        self.codec = text_encoding(data, name, encoding)

    def __iter__(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder(self.codec)("strict")
        view = memoryview(self.data)
        carry = ""
        for start in range(0, len(self.data), _STEP):
            final = start + _STEP >= len(self.data)
            try:
                text = carry + decoder.decode(view[start : start + _STEP], final)
            except UnicodeDecodeError as exc:
                raise _not_valid(self.data, self.name, self.codec, min(start + exc.start, len(self.data) - 1)) from None
            lines = text.split("\n")
            carry = lines.pop()
            for line in lines:
                yield line + "\n"
        if carry:
            yield carry

    def text(self) -> str:
        """The whole text (for the rare look back at a line the csv module gave up on)."""
        return _decode_strict(self.data, self.name, self.codec)


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 text written without a BOM: ASCII characters leave a NUL in every other byte."""
    pairs = len(head) // 2
    if pairs < 4:
        return None
    odd, even = head[1 : pairs * 2 : 2].count(0), head[0 : pairs * 2 : 2].count(0)
    if odd >= 0.9 * pairs and even == 0:
        return "utf-16-le"
    if even >= 0.9 * pairs and odd == 0:
        return "utf-16-be"
    return None


def _decode_strict(data: bytes, name: str, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise _not_valid(data, name, encoding, exc.start) from None


def _not_valid(data: bytes, name: str, encoding: str, position: int) -> CatalogError:
    shown = "UTF-8" if encoding.startswith("utf-8") or encoding == "utf_8" else encoding
    return CatalogError(
        f"{name} is not valid {shown} ({_where(data, position)}); "
        "re-save it as UTF-8 or pass the encoding it was saved in, e.g. --encoding cp1252 (Excel on Windows)"
    )


def _sample(data: bytes, first_bad: int = 0) -> bytes:
    """The lines holding non-ASCII bytes (what tells encodings apart), up to ``_SAMPLE_BYTES``,
    from the line of the first byte that is not UTF-8 on. 0x0A is never part of a multi-byte
    character in the encodings considered, so splitting on it is safe."""
    kept: list[bytes] = []
    size = 0
    start = data.rfind(b"\n", 0, first_bad) + 1
    window = data[start : start + 4 * _SAMPLE_BYTES]
    lines = window.split(b"\n") if start + len(window) >= len(data) else window.split(b"\n")[:-1]
    for line in lines:
        if not line.isascii():
            kept.append(line)
            size += len(line) + 1
            if size >= _SAMPLE_BYTES:
                break
    return b"\n".join(kept)


def _plausible_latin(text: str) -> bool:
    """Western text: non-ASCII characters are letters or common symbols, and rarely three in
    a row (Chinese read as cp1252 is nothing but runs like ``½ð¿Ë¶Ù``)."""
    wide = [c for c in text if ord(c) > 127]
    if not wide:
        return True
    if any(0x80 <= ord(c) <= 0x9F for c in wide):
        return False
    known = sum(1 for c in wide if c in _LATIN_SYMBOLS or (c.isalpha() and "LATIN" in unicodedata.name(c, "")))
    in_runs = run = 0
    for c in text:
        if ord(c) > 127:
            run += 1
            continue
        if run >= 3:
            in_runs += run
        run = 0
    if run >= 3:
        in_runs += run
    return known / len(wide) >= 0.97 and in_runs / len(wide) <= 0.2


def _plausible_chinese(text: str) -> bool:
    """Chinese text: non-ASCII characters are CJK, and nearly all of them common ones (in
    GB2312, whose bytes are both >= 0xA1). cp1252 read as GB18030 gives rare characters made
    of an accented byte and the ASCII letter after it (``Getr鋘ke``)."""
    wide = [c for c in text if ord(c) > 127]
    if not wide:
        return False
    cjk = [c for c in wide if "\u4e00" <= c <= "\u9fff" or "\u3000" <= c <= "\u303f" or "\uff00" <= c <= "\uffef"]
    if len(cjk) / len(wide) < 0.9:
        return False
    common = 0
    for c in cjk:
        try:
            c.encode("gb2312")
        except UnicodeEncodeError:
            continue
        common += 1
    return common / len(cjk) >= 0.9


_CHECKS = {"cp1252": _plausible_latin, "gb18030": _plausible_chinese}


def _family(encoding: str | None, sample: bytes) -> str | None:
    """The detector's guess as one of the encodings shops write: any Western single-byte
    code page counts as cp1252 (Excel's), any Chinese one as GB18030."""
    if not encoding:
        return None
    name = encoding.lower().replace("-", "_")
    if name.replace("_", "") in _GB_ALIASES or name.startswith("gb"):
        return "gb18030"
    try:
        text = sample.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return name
    try:
        if text == sample.decode("cp1252"):
            return "cp1252"
    except UnicodeDecodeError:
        pass
    letters = [c for c in text if ord(c) > 127 and c.isalpha()]
    if letters and all("LATIN" in unicodedata.name(c, "") for c in letters):
        return "cp1252"
    return name


def detect(data: bytes, name: str, first_bad: int = 0) -> str:
    """The encoding of non-UTF-8 ``data``, or a ``CatalogError`` with the ``--encoding`` hint."""
    from charset_normalizer import from_bytes  # late: only files that are not UTF-8 need it

    sample = _sample(data, first_bad)
    best = from_bytes(sample).best() if sample else None
    guess = _family(best.encoding if best else None, sample)
    plausible = []
    for candidate, check in _CHECKS.items():
        try:
            text = sample.decode(candidate)
        except UnicodeDecodeError:
            continue
        if check(text):
            plausible.append(candidate)
    if len(plausible) == 1 and guess == plausible[0]:
        return guess
    options = plausible or ([guess] if guess else [])
    hint = " or ".join(f"--encoding {o}" for o in options) if options else "--encoding cp1252 (Excel on Windows)"
    looks = f" (it could be {' or '.join(options)})" if len(options) > 1 else ""
    raise CatalogError(
        f"{name} is not UTF-8 ({_where(data, first_bad)}) and its encoding cannot be told "
        f"for sure{looks}; re-save it as UTF-8 or pass {hint}"
    )


def _where(data: bytes, position: int) -> str:
    """``line 3, byte 17``: where an undecodable byte is, never the byte itself (a file that
    is not a catalog yet must not have its content quoted)."""
    start = data.rfind(b"\n", 0, position) + 1
    line = data.count(b"\n", 0, position) + 1
    return f"line {line}, byte {position - start + 1}"
