"""Checks the command line makes before it starts a flow run.

A catalog that cannot be read or a template that cannot render is the user's to fix, and
should read as one line and exit code 2, not as a failed flow run with a traceback in the
console and the UI. So the CLI reads and validates the inputs first (a 200,000-row CSV
takes about 2 s); the flow reads them again on its own, as it must when started from a
deployment. Rows are checked as they are read: the check holds no row or prompt after it.
"""
from __future__ import annotations

from dataclasses import dataclass

from bananaflow.errors import CatalogError
from bananaflow.options import CatalogOptions
from bananaflow.planning.jobspec import Job
from bananaflow.planning.plan import open_catalog_for, stream_items


@dataclass
class CheckedInputs:
    """What the check counted."""

    products: int
    images: int


def check_inputs(catalog: str, job: Job, *, prefix: str = "", reading: CatalogOptions | None = None) -> CheckedInputs:
    """Raise ``CatalogError`` or ``TemplateError`` for inputs no run could use.

    Every (row x variant) prompt is rendered once, so a column a category's template needs
    and the catalog lacks is reported here, naming the row and the column. A catalog with
    no usable row is an error too: a run that makes nothing is never what was meant.
    """
    stream = open_catalog_for(catalog, reading)
    images = sum(1 for _ in stream_items(stream, job, prefix))
    if not images:
        detail = "it has a header but no rows"
        if stream.rejected:
            first = stream.rejected[0]
            detail = f"all {len(stream.rejected)} rows were rejected (row {first.row_number}: {first.reason})"
        elif stream.skipped:
            detail = (f"all {len(stream.skipped)} products are drafts, archived or app pseudo-products "
                      "(--include-unpublished makes them)")
        raise CatalogError(f"{catalog} has no products to generate: {detail}")
    return CheckedInputs(products=stream.accepted, images=images)
