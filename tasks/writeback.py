"""Writing the new image URLs back as a Shopify CSV or a Merchant Center supplemental feed."""
from __future__ import annotations

from collections.abc import Iterable

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from bananaflow.errors import BananaflowError
from bananaflow.landing.manifest import ManifestRow
from bananaflow.landing.storage import ImageStore
from bananaflow.planning.jobspec import Job
from bananaflow.reports.writeback import merchant_supplemental, shopify_csv

FILE_NAMES = {"shopify": ("shopify_products.csv", "text/csv; charset=utf-8"),
              "merchant": ("merchant_supplemental.tsv", "text/tab-separated-values; charset=utf-8")}


@task(name="write-back", cache_policy=NO_CACHE, persist_result=False)
def write_back(
    rows: Iterable[ManifestRow], job: Job, store: ImageStore, run_prefix: str, catalog: str, encoding: str | None
) -> str | None:
    """The write-back file beside the manifest; returns its URI (None when not configured)."""
    spec = job.spec.writeback
    if spec.format is None:
        return None
    order = [v.name for v in job.variants]
    name, content_type = FILE_NAMES[spec.format]
    key = f"{run_prefix}/{name}"
    try:
        if spec.format == "shopify":
            data = shopify_csv(catalog, rows, store, spec, order, encoding=encoding)
        else:
            data = merchant_supplemental(rows, store, spec, order)
        store.put_bytes(key, data, content_type)
    except BananaflowError as exc:  # the images and manifest are safe; say what is missing
        get_run_logger().error("could not write %s: %s (the manifest lists every image)", name, exc.message)
        return None
    return store.uri(key)
