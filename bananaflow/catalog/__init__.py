"""Catalog input: reading a shop's export into validated rows, its feed presets, and the
reference photos it links to.

Reading is a chain, one module per step: ``source`` (the bytes, within ``read_limits``),
``sniff`` (the format), ``formats`` (one parser per format, keyed by the sniffed kind),
``columns`` (presets, renames, the required columns) and ``validate`` (row checks and
rejections); ``loader.open_catalog`` runs it.

The names below are the package's public API. Each is imported from its module on first use:
the CLI reads ``text`` on every command and must not pay for pandas and pyarrow, which the
loader imports.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bananaflow.catalog.columns import sku_slug
    from bananaflow.catalog.encoding import decode_catalog
    from bananaflow.catalog.loader import CatalogLoad, CatalogStream, load_catalog, open_catalog
    from bananaflow.catalog.references import ReferenceFetcher, ReferencePhotoError, require_edit_mode, resolve_link
    from bananaflow.catalog.shopify import option_kind
    from bananaflow.catalog.source import catalog_fingerprint, read_catalog_bytes
    from bananaflow.catalog.text import strip_html
    from bananaflow.catalog.validate import CatalogRow, Rejection, rejections_to_csv, split_links

__all__ = [
    "CatalogLoad",
    "CatalogRow",
    "CatalogStream",
    "ReferenceFetcher",
    "ReferencePhotoError",
    "Rejection",
    "catalog_fingerprint",
    "decode_catalog",
    "load_catalog",
    "open_catalog",
    "option_kind",
    "read_catalog_bytes",
    "rejections_to_csv",
    "require_edit_mode",
    "resolve_link",
    "sku_slug",
    "split_links",
    "strip_html",
    # modules other packages import by name (``from bananaflow.catalog.loader import ...``)
    "color_variants",
    "loader",
    "locations",
    "read_limits",
    "references",
    "shopify",
    "text",
]

#: The module (under this package) each public name is defined in.
_HOMES: dict[str, str] = {
    "CatalogLoad": "loader",
    "CatalogRow": "validate",
    "CatalogStream": "loader",
    "ReferenceFetcher": "references",
    "ReferencePhotoError": "references",
    "Rejection": "validate",
    "catalog_fingerprint": "source",
    "decode_catalog": "encoding",
    "load_catalog": "loader",
    "open_catalog": "loader",
    "option_kind": "shopify",
    "read_catalog_bytes": "source",
    "rejections_to_csv": "validate",
    "require_edit_mode": "references",
    "resolve_link": "references",
    "sku_slug": "columns",
    "split_links": "validate",
    "strip_html": "text",
}

if not TYPE_CHECKING:  # type checkers see the imports above; at run time names load on first use

    def __getattr__(name: str) -> object:
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
        globals()[name] = value
        return value
