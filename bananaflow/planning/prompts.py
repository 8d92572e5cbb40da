"""Prompt templates: Jinja2 text rendered once per catalog row.

Templates are written by the shop's team; catalog values come from feeds nobody reviews.
So rendering runs in Jinja's immutable sandbox, and values are only ever *data*: a title
``{{ ''.__class__ }}`` is printed as those characters, never evaluated. Undefined names
fail loudly (a prompt with a silently empty colour generates the wrong product), except
in ``{% if %}`` tests, so optional columns can be guarded.
"""
from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bananaflow.catalog.text import strip_html
from bananaflow.errors import TemplateError

__all__ = ["PromptTemplate", "join_list", "sentence", "strip_html", "truncate_words"]

_SPLIT_LIST = re.compile(r"\s*[,;|]\s*")


class _MissingField(jinja2.UndefinedError):
    def __init__(self, name: str | None, message: str) -> None:
        super().__init__(message)
        self.field = name


class _CatalogUndefined(jinja2.Undefined):
    """jinja2's StrictUndefined except falsy in ``{% if %}`` (``Undefined``'s ``__bool__``), so
    ``{% if color %}`` guards a column the catalog may not have, while printing, iterating or
    comparing it is still an error."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:
        raise _MissingField(self._undefined_name, self._undefined_message)

    __iter__ = __str__ = __len__ = __eq__ = __ne__ = __hash__ = __contains__ = _fail_with_undefined_error
    __add__ = __radd__ = __mul__ = __rmul__ = __getitem__ = __call__ = _fail_with_undefined_error


def truncate_words(value: Any, count: int = 60, end: str = "…") -> str:
    """At most ``count`` words, cut where a sentence ends when one ends in the second half
    of them, else after a whole word with ``end``: long descriptions dilute an image prompt,
    and "has a distinctly." reads as a finished sentence that is not one."""
    words = str(value or "").split()
    if len(words) <= count:
        return " ".join(words)
    kept = words[:count]
    for i in range(len(kept) - 1, count // 2 - 1, -1):
        if kept[i][-1:] in ".!?…" and not re.search(r"\d\.$", kept[i]):
            return " ".join(kept[: i + 1])
    return " ".join(kept).rstrip(",;:-–—") + end


def join_list(value: Any, sep: str = ", ", last: str | None = None) -> str:
    """A list, or a string of items separated by ``,`` ``;`` or ``|`` (feed style), as prose:
    ``"red|blue|green" | join_list(last=" and ")`` → ``red, blue and green``."""
    if isinstance(value, str):
        items = [p for p in _SPLIT_LIST.split(value.strip()) if p]
    elif isinstance(value, Iterable):
        items = [str(p).strip() for p in value if str(p).strip()]
    else:
        items = [str(value)] if value not in (None, "") else []
    if last is not None and len(items) > 1:
        return sep.join(items[:-1]) + last + items[-1]
    return sep.join(items)


def sentence(value: Any) -> str:
    """``value`` ending in sentence punctuation, so the next prompt line does not run on."""
    text = str(value or "").strip()
    return text if not text or text[-1] in ".!?…:;" else text + "."


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=_CatalogUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True
    )
    env.filters.update(
        strip_html=strip_html, truncate_words=truncate_words, join_list=join_list, sentence=sentence
    )
    return env


_ENV = _environment()


class PromptTemplate:
    """A compiled prompt template; construction fails on syntax errors, not the first row."""

    def __init__(self, source: str, name: str = "inline", path: str | None = None) -> None:
        self.source = source
        self.name = name
        self.path = path
        where = path or name
        try:
            ast = _ENV.parse(source, name=name)
            self._template = _ENV.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"template '{where}' line {exc.lineno}: {exc.message}") from None
        self.variables: frozenset[str] = frozenset(jinja2.meta.find_undeclared_variables(ast))
        self.content_hash = hashlib.sha256(source.encode("utf-8")).hexdigest()

    def __repr__(self) -> str:
        return f"PromptTemplate({self.name!r}, sha256={self.content_hash[:12]})"

    @classmethod
    def from_file(cls, path: str | Path) -> PromptTemplate:
        file = Path(path)
        try:
            source = file.read_text("utf-8-sig")
        except FileNotFoundError:
            raise TemplateError(f"prompt template {file} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(f"cannot read prompt template {file}: {exc}") from None
        return cls(source, name=file.name, path=str(file))

    @classmethod
    def from_string(cls, text: str, name: str = "inline") -> PromptTemplate:
        return cls(text, name=name)

    @classmethod
    def default(cls) -> PromptTemplate:
        """The shipped main-image prompt: white studio background, identity lock."""
        source = resources.files("bananaflow.data").joinpath("default_prompt.j2").read_text("utf-8")
        return cls(source, name="default_prompt.j2")

    def render(self, fields: Mapping[str, str], row_number: int | None = None, sku: str | None = None) -> str:
        """The prompt for one row, whitespace collapsed to single spaces.

        Columns are available by name; ``fields`` also holds them all, for names that are
        not identifiers (``fields['Body (HTML)']``).
        """
        # entities never belong in a prompt (``2&quot; × 2&quot;``); printed values are decoded
        decoded = {k: html.unescape(v) if isinstance(v, str) and "&" in v else v for k, v in fields.items()}
        context: dict[str, Any] = dict(decoded)
        context.setdefault("fields", dict(decoded))
        if sku is not None:
            context.setdefault("sku", sku)
        sku = sku if sku is not None else str(fields.get("sku", "")) or None
        try:
            text = self._template.render(context)
        except _MissingField as exc:
            raise TemplateError(self._missing_message(exc, row_number, sku), row=row_number, field=exc.field) from None
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"{_where(row_number, sku)}: template '{self.name}': {exc.message}", row=row_number) from None
        except jinja2.TemplateError as exc:  # SecurityError, runtime errors in the template
            raise TemplateError(f"{_where(row_number, sku)}: template '{self.name}' failed: {exc}", row=row_number) from None
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise TemplateError(f"{_where(row_number, sku)}: template '{self.name}' failed: {exc}", row=row_number) from None
        return " ".join(text.split())

    def _missing_message(self, exc: _MissingField, row_number: int | None, sku: str | None) -> str:
        field = exc.field
        if field is None or exc.message is None or "is undefined" not in str(exc.message):
            return f"{_where(row_number, sku)}: template '{self.name}': {exc.message}"
        return (
            f"{_where(row_number, sku)}: template '{self.name}' uses '{field}', which this catalog "
            f"does not have; add the column or guard it with {{% if {field} %}}"
        )


def _where(row_number: int | None, sku: str | None) -> str:
    parts = f"row {row_number}" if row_number is not None else "row ?"
    return f"{parts} (sku {sku})" if sku else parts
