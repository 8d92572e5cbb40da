"""Checks the command line makes before it starts a flow run.

A catalog that cannot be read or a template that cannot render is the user's to fix, and
should read as one line and exit code 2, not as a failed flow run with a traceback in the
console and the UI. So the CLI reads and validates the inputs first (a 200,000-row CSV
takes about 2 s); the flow reads them again on its own, as it must when started from a
deployment.
"""
from __future__ import annotations

from bananaflow.catalog import CatalogLoad, load_catalog
from bananaflow.errors import CatalogError
from bananaflow.prompts import PromptTemplate


def check_inputs(catalog: str, template: str | None = None, encoding: str | None = None) -> CatalogLoad:
    """Raise ``CatalogError`` or ``TemplateError`` for inputs no run could use.

    The template is rendered for the first accepted row: a column it needs and the catalog
    lacks fails every row, so it is reported here, naming the column. A catalog with no
    usable row is an error too: a run that makes nothing is never what was meant.
    """
    loaded = load_catalog(catalog, encoding=encoding)
    if not loaded.accepted:
        detail = "it has a header but no rows"
        if loaded.rejected:
            first = loaded.rejected[0]
            detail = f"all {len(loaded.rejected)} rows were rejected (row {first.row_number}: {first.reason})"
        raise CatalogError(f"{catalog} has no products to generate: {detail}")
    prompt = PromptTemplate.from_file(template) if template else PromptTemplate.default()
    if loaded.accepted:
        first = loaded.accepted[0]
        prompt.render(first.fields, row_number=first.row_number, sku=first.sku)
    return loaded
