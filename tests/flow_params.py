"""Flow parameters from short keyword names, for tests that call flows directly.

``flow_params(catalog="c.csv", bucket="b", concurrency=4)`` gives
``{"catalog": "c.csv", "delivery": {"bucket": "b"}, "limits": {"max_in_flight": 4}}``:
every name is a field of one ``RunOptions`` group (or an alias below), so a typo fails.
"""
from __future__ import annotations

from typing import Any

from bananaflow.options import RunOptions

ALIASES = {
    "concurrency": ("limits", "max_in_flight"),
    "provider_block": ("blocks", "provider"),
    "store_block": ("blocks", "store"),
    "limits_block": ("blocks", "limits"),
}


def _group_of(name: str) -> tuple[str, str]:
    if name in ALIASES:
        return ALIASES[name]
    for group, info in RunOptions.model_fields.items():
        if name in info.annotation.model_fields:  # type: ignore[union-attr]
            return group, name
    raise TypeError(f"no run option is called {name!r}")


def flow_params(**flat: Any) -> dict[str, Any]:
    """Grouped flow parameters; ``catalog`` stays top-level."""
    params: dict[str, Any] = {}
    for name, value in flat.items():
        if name == "catalog":
            params["catalog"] = value
            continue
        group, field = _group_of(name)
        params.setdefault(group, {})[field] = value
    return params
