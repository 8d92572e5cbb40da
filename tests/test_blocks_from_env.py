from __future__ import annotations

import pytest

from bananaflow.errors import ConfigurationError
from blocks.from_env import limits_block_from_env, store_block_from_env


def test_store_block_takes_boto3s_standard_variables():
    block = store_block_from_env(
        "shop-images", "catalog",
        {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000", "AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
         "AWS_SECRET_ACCESS_KEY": "very-secret"},
    )
    assert (block.bucket, block.prefix, block.endpoint_url, block.region) == (
        "shop-images", "catalog", "http://127.0.0.1:9000", "eu-west-1")
    assert block.secret_access_key.get_secret_value() == "very-secret"
    assert "very-secret" not in repr(block) and "very-secret" not in block.model_dump_json()


def test_limits_block_reads_numbers_and_names_a_bad_one():
    limits = limits_block_from_env({"BANANAFLOW_MAX_IN_FLIGHT": "12", "BANANAFLOW_RPM": "120"})
    assert limits.max_in_flight == 12 and limits.requests_per_minute == 120.0
    assert limits_block_from_env({}).max_in_flight == 8
    with pytest.raises(ConfigurationError, match="BANANAFLOW_RPM='fast'"):
        limits_block_from_env({"BANANAFLOW_RPM": "fast"})
