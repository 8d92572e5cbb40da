"""Checks the command line makes before it starts a flow run.

A catalog that cannot be read or a template that cannot render is the user's to fix, and
should read as one line and exit code 2, not as a failed flow run with a traceback in the
console and the UI. So the CLI reads and validates the inputs first (a 200,000-row CSV
takes about 2 s); the flow reads them again on its own, as it must when started from a
deployment.
"""
from __future__ import annotations

from bananaflow.catalog.loader import CatalogLoad
from bananaflow.errors import CatalogError
from bananaflow.options import CatalogOptions
from bananaflow.planning.jobspec import Job
from bananaflow.planning.plan import plan_slices, read_catalog

#: Rows rendered at a time: every row is checked, without holding every prompt at once.
_RENDER_SLICE = 5000


def check_inputs(catalog: str, job: Job, *, prefix: str = "", reading: CatalogOptions | None = None) -> CatalogLoad:
    """Raise ``CatalogError`` or ``TemplateError`` for inputs no run could use.

    Every (row x variant) prompt is rendered once, so a column a category's template needs
    and the catalog lacks is reported here, naming the row and the column. A catalog with
    no usable row is an error too: a run that makes nothing is never what was meant.
    """
    loaded = read_catalog(catalog, reading)
    if not loaded.accepted:
        detail = "it has a header but no rows"
        if loaded.rejected:
            first = loaded.rejected[0]
            detail = f"all {len(loaded.rejected)} rows were rejected (row {first.row_number}: {first.reason})"
        elif loaded.skipped:
            detail = (f"all {len(loaded.skipped)} products are drafts, archived or app pseudo-products "
                      "(--include-unpublished makes them)")
        raise CatalogError(f"{catalog} has no products to generate: {detail}")
    for _ in plan_slices(loaded, job, prefix, _RENDER_SLICE):
        pass
    return loaded
