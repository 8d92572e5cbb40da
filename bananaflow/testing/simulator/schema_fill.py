"""A JSON value valid for any response schema, filled with what the simulator's judge saw.

Both dialects are read: Gemini's ``responseSchema`` (OpenAPI subset: upper-case ``type``,
``nullable``, ``propertyOrdering``) and JSON Schema (``responseJsonSchema``, OpenAI's strict
``json_schema``: lower-case or list ``type``, ``$ref`` into ``$defs``, ``anyOf``, ``const``). Every
bound is honoured: ``enum``, ``minimum``/``maximum`` (exclusive too), ``minItems``/``maxItems``,
``minLength``/``maxLength``, integer vs number.

Where the schema speaks the quality gate's language, the value carries the verdict: an array
whose items have a ``name`` enum gets one item per enum value, an object with properties named
like checks gets each check's answer, and within a check ``passed``/``pass``/``ok`` booleans,
``reason``-like strings and a ``confidence`` number say what the judge's eye found. Anything
else gets a plain valid value, so a client asking for an unrelated schema still gets valid JSON.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bananaflow.landing.verdict import CHECK_NAMES
from bananaflow.testing.simulator.judge_eye import Findings

_PASS_KEYS = frozenset({"passed", "pass", "ok", "approved", "acceptable", "success"})
_FAIL_KEYS = frozenset({"failed", "fail", "rejected"})
_REASON_KEYS = frozenset({"reason", "reasons", "explanation", "why", "rationale", "details", "comment", "finding"})
_SUMMARY_KEYS = frozenset({"summary", "note", "overall", "verdict_summary", "description"})
_MAX_DEPTH = 12


@dataclass(frozen=True)
class _Context:
    check: str | None = None
    key: str = ""
    depth: int = 0


class SchemaFiller:
    """Fill ``schema`` (its own root resolves ``$ref``s) with ``findings``."""

    def __init__(self, schema: dict[str, Any], findings: Findings) -> None:
        self.root = schema
        self.findings = findings

    def value(self) -> Any:
        return self._fill(self.root, _Context())

    # -- dispatch -----------------------------------------------------------------
    def _resolve(self, schema: Any) -> dict[str, Any]:
        seen = 0
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and seen < _MAX_DEPTH:
            node: Any = self.root
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node.get(part, {}) if isinstance(node, dict) and part else node
            schema, seen = node, seen + 1
        return schema if isinstance(schema, dict) else {}

    def _fill(self, raw: Any, ctx: _Context) -> Any:
        schema = self._resolve(raw)
        if ctx.depth > _MAX_DEPTH:
            return None
        if "const" in schema:
            return schema["const"]
        for key in ("anyOf", "oneOf", "allOf"):
            options = [self._resolve(option) for option in schema.get(key) or ()]
            usable = [o for o in options if _type(o) != "null"] or options
            if usable:
                merged = {k: v for k, v in schema.items() if k != key}
                return self._fill({**merged, **usable[0]}, ctx)
        kind = _type(schema)
        if "enum" in schema and schema["enum"]:
            return self._enum(schema["enum"], ctx)
        if kind == "object" or "properties" in schema:
            return self._object(schema, ctx)
        if kind == "array":
            return self._array(schema, ctx)
        if kind == "boolean":
            return self._boolean(ctx)
        if kind in ("number", "integer"):
            return self._number(schema, kind, ctx)
        if kind == "null":
            return None
        return self._string(schema, ctx)

    # -- kinds --------------------------------------------------------------------
    def _enum(self, values: list[Any], ctx: _Context) -> Any:
        if ctx.check in values:
            return ctx.check
        wanted = "pass" if self._passed(ctx) else "fail"
        for value in values:
            if isinstance(value, str) and value.lower().startswith(wanted):
                return value
        return values[0]

    def _object(self, schema: dict[str, Any], ctx: _Context) -> dict[str, Any]:
        props = schema.get("properties") or {}
        order = list(schema.get("propertyOrdering") or ()) + [k for k in props if k not in (schema.get("propertyOrdering") or ())]
        out: dict[str, Any] = {}
        for key in order:
            if key not in props:
                continue
            check = key if key in CHECK_NAMES else ctx.check
            out[key] = self._fill(props[key], _Context(check, key, ctx.depth + 1))
        return out

    def _array(self, schema: dict[str, Any], ctx: _Context) -> list[Any]:
        low = int(schema.get("minItems", 0) or 0)
        high = schema.get("maxItems")
        items = self._resolve(schema.get("items") or {})
        names = _named_enum(self, items)
        if names:
            chosen = list(names)
            while len(chosen) < low:
                chosen.append(names[len(chosen) % len(names)])
            if high is not None:
                chosen = chosen[: int(high)]
            return [self._fill(items, _Context(name, ctx.key, ctx.depth + 1)) for name in chosen]
        if ctx.key.lower() in _REASON_KEYS and _type(items) == "string":  # "reasons": ["..."]
            count = max(low, 1)
        else:
            count = max(low, 1)
        if high is not None:
            count = min(count, int(high))
        return [self._fill(items, _Context(ctx.check, ctx.key, ctx.depth + 1)) for _ in range(count)]

    def _passed(self, ctx: _Context) -> bool:
        if ctx.check is None:
            return self.findings.passed
        return ctx.check not in self.findings.failed

    def _boolean(self, ctx: _Context) -> bool:
        key = ctx.key.lower()
        if key in _FAIL_KEYS or key.startswith("has_") or key.startswith("is_defect"):
            return not self._passed(ctx)
        return self._passed(ctx)

    def _number(self, schema: dict[str, Any], kind: str, ctx: _Context) -> int | float:
        low = _bound(schema, "minimum", "exclusiveMinimum", kind, up=True)
        high = _bound(schema, "maximum", "exclusiveMaximum", kind, up=False)
        key = ctx.key.lower()
        target: float = 0.9 if "confidence" in key or "certainty" in key else (1.0 if self._passed(ctx) else 0.0)
        if "score" in key and high is not None and low is not None:
            target = high if self._passed(ctx) else low
        if low is not None:
            target = max(target, low)
        if high is not None:
            target = min(target, high)
        return int(math.ceil(target)) if kind == "integer" and (high is None or math.ceil(target) <= high) else (
            int(math.floor(target)) if kind == "integer" else target)

    def _string(self, schema: dict[str, Any], ctx: _Context) -> str:
        key = ctx.key.lower()
        fmt = schema.get("format")
        if fmt == "date-time":
            text = "2026-01-01T00:00:00Z"
        elif fmt == "date":
            text = "2026-01-01"
        elif fmt in ("uri", "url"):
            text = "https://example.com/"
        elif key in _SUMMARY_KEYS and ctx.check is None:
            text = self.findings.summary()
        elif ctx.check is not None or key in _REASON_KEYS:
            text = self.findings.reason(ctx.check) if ctx.check else self.findings.summary()
        else:
            text = "checked"
        low, high = int(schema.get("minLength", 0) or 0), schema.get("maxLength")
        if len(text) < low:
            text = text + "." * (low - len(text))
        if high is not None and len(text) > int(high):
            text = text[: int(high)]
        return text


def _type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [str(k).lower() for k in kind if str(k).lower() != "null"]
        return kinds[0] if kinds else "null"
    return str(kind).lower() if kind else ""


def _named_enum(filler: SchemaFiller, items: dict[str, Any]) -> list[str]:
    """The check names an array's item ``name``-like enum lists (empty if it has none)."""
    props = items.get("properties") or {}
    for key in ("name", "check", "check_name", "id"):
        prop = filler._resolve(props.get(key)) if key in props else {}
        values = prop.get("enum") or []
        names = [v for v in values if isinstance(v, str)]
        if names:
            return names
    return []


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str, kind: str, *, up: bool) -> float | None:
    step = 1 if kind == "integer" else 1e-6
    values = []
    if isinstance(schema.get(inclusive), (int, float)):
        values.append(float(schema[inclusive]))
    ex = schema.get(exclusive)
    if isinstance(ex, (int, float)) and not isinstance(ex, bool):
        values.append(float(ex) + (step if up else -step))
    if not values:
        return None
    return max(values) if up else min(values)


def fill_schema(schema: dict[str, Any] | None, findings: Findings) -> Any:
    """A value for ``schema``; with no schema, the quality gate's own verdict shape."""
    if schema is None:
        return {
            "checks": [{"name": name, "passed": name not in findings.failed, "confidence": 0.9,
                        "reason": findings.reason(name)} for name in CHECK_NAMES],
            "passed": findings.passed,
            "summary": findings.summary(),
        }
    return SchemaFiller(schema, findings).value()
