"""What an upstream job sends when a catalog export changes: the ``catalog.updated`` event.

    PREFECT_API_URL=http://127.0.0.1:4200/api \
        python examples/emit_catalog_updated.py s3://shop-feeds/catalog.csv --shop acme

The ``on-catalog-updated`` deployment has a trigger on this event (resource
``catalog.<shop>``) and starts a catalog run with ``catalog`` = the payload's
``catalog_uri``. From a shell the same is:

    prefect event emit catalog.updated --resource-id catalog.acme \
        --payload '{"catalog_uri": "s3://shop-feeds/catalog.csv"}'
"""
from __future__ import annotations

import argparse
import sys

from prefect.events import emit_event


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("catalog_uri")
    parser.add_argument("--shop", default="default", help="names the resource: catalog.<shop>")
    args = parser.parse_args()
    event = emit_event(
        "catalog.updated",
        resource={"prefect.resource.id": f"catalog.{args.shop}", "prefect.resource.name": args.catalog_uri},
        payload={"catalog_uri": args.catalog_uri},
    )
    if event is None:
        print("no event sent: is PREFECT_API_URL set to a Prefect server?", file=sys.stderr)
        return 1
    print(event.id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
