"""Rendered prompts kept compressed while a run holds every planned item.

A run plans every item up front, and an item's rendered prompt (700-1,000 characters, mostly
the template's fixed wording) was two thirds of what planning held per item. Prompts of one
template differ only in the product's values, so each is deflated against a preset
dictionary, the first prompt seen with the same opening: 760 characters become about 35
bytes. Unpacking costs about 10 µs, against a request that takes seconds.

Dictionaries are kept per process (at most ``MAX_DICTIONARIES``, a few KB); a packed value
never leaves the process: ``WorkItem`` packs on construction and unpacks on every read, so
pickling, ``dataclasses.asdict`` and equality see the text.
"""
from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from typing import Any

#: Shorter texts are kept as they are (nothing to gain).
MIN_PACKED = 160
MAX_DICTIONARIES = 64
#: Texts with the same opening share a dictionary; a template starting with a product value
#: registers a few, then packs against the last one (its fixed wording still matches).
_OPENING = 32
_WBITS = -15  # raw deflate: no header or checksum per text

_dictionaries: list[bytes] = []
_by_opening: dict[str, int] = {}
_lock = threading.Lock()
_slots: dict[tuple[type, str], Any] = {}


def pack(text: str) -> str | bytes:
    """``text``, or a shorter bytes value ``unpack`` turns back into it."""
    if not isinstance(text, str) or len(text) < MIN_PACKED:
        return text
    data = text.encode("utf-8")
    index = _dictionary_for(text[:_OPENING], data)
    compressor = zlib.compressobj(6, zlib.DEFLATED, _WBITS, zdict=_dictionaries[index])
    packed = bytes((index,)) + compressor.compress(data) + compressor.flush()
    return packed if len(packed) < len(data) else text


def unpack(value: str | bytes) -> str:
    """The text ``pack`` was given."""
    if isinstance(value, str):
        return value
    decompressor = zlib.decompressobj(_WBITS, zdict=_dictionaries[value[0]])
    return (decompressor.decompress(value[1:]) + decompressor.flush()).decode("utf-8")


def _dictionary_for(opening: str, data: bytes) -> int:
    index = _by_opening.get(opening)
    if index is not None:
        return index
    with _lock:
        if opening not in _by_opening and len(_dictionaries) < MAX_DICTIONARIES:
            _dictionaries.append(data)
            _by_opening[opening] = len(_dictionaries) - 1
        return _by_opening.get(opening, len(_dictionaries) - 1)


def packed_field(cls: type[Any], name: str, pack_value: Callable[[Any], Any], unpack_value: Callable[[Any], Any]) -> None:
    """Make the slot ``name`` of the slotted dataclass ``cls`` hold ``pack_value(value)`` and
    read as ``unpack_value(stored)``: ``__init__``, ``replace``, pickling, ``asdict``, equality
    and ``repr`` all go through attribute access, so they see the value, never the packing."""
    slot = _slots[(cls, name)] = cls.__dict__[name]

    def read(self: Any) -> Any:
        return unpack_value(slot.__get__(self, cls))

    def write(self: Any, value: Any) -> None:
        slot.__set__(self, pack_value(value))

    setattr(cls, name, property(read, write, doc=f"{name} (kept packed)"))


def stored(obj: Any, name: str) -> Any:
    """What ``obj`` holds in its packed field ``name`` (to check what a run keeps per item)."""
    return _slots[(type(obj), name)].__get__(obj, type(obj))


def pack_hex_digest(value: str) -> str | bytes:
    """A 64-character lowercase hex digest as its 32 bytes; anything else as it is."""
    if isinstance(value, str) and len(value) == 64:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            return value
        if raw.hex() == value:
            return raw
    return value


def unpack_hex_digest(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.hex()
