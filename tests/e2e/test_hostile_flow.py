"""The hostile-SKU catalog through the real flow: every product lands under a safe, unique
key inside the prefix, its metadata survives S3's headers, and the manifest keeps the
merchant's SKUs exactly as written."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest

from bananaflow.catalog.loader import load_catalog
from bananaflow.landing.storage import decode_metadata
from tests.flow_params import flow_params

pytestmark = pytest.mark.e2e

CORPUS = Path(__file__).parent.parent / "fixtures" / "hostile" / "hostile_skus.csv"
SAFE_KEY = re.compile(r"^hostile/[A-Za-z0-9._-]+/main-[0-9a-f]{12}\.png$")


def test_hostile_skus_land_safely(prefect_api, s3_env, provider_env):
    from bananaflow_prefect.flows.catalog_flow import catalog_to_images

    skus = [row.sku for row in load_catalog(str(CORPUS)).accepted]
    summary = catalog_to_images(**flow_params(catalog=str(CORPUS), bucket="hostile", prefix="hostile", concurrency=4))
    assert summary["counts"] == {"succeeded": len(skus)}

    client = s3_env.client()
    listing = client.list_objects_v2(Bucket="hostile", Prefix="", MaxKeys=1000)["Contents"]
    images = [o["Key"] for o in listing if "/runs/" not in o["Key"]]
    assert len(images) == len(skus)
    assert all(SAFE_KEY.match(key) for key in images), images

    manifest_key = summary["manifest"]["parquet"].removeprefix("s3://hostile/")
    frame = pd.read_parquet(io.BytesIO(client.get_object(Bucket="hostile", Key=manifest_key)["Body"].read()))
    assert sorted(frame["sku"]) == sorted(skus)  # control characters, newlines, 1,000 chars: as written
    by_key = dict(zip(frame["key"], frame["sku"]))
    for key in images:
        meta = decode_metadata(client.head_object(Bucket="hostile", Key=key)["Metadata"])
        assert meta["bananaflow-sku"] == by_key[key][:64]
