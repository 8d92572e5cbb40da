"""Where a deployment run may read its catalog from when the location is input (an event's
payload, a run's parameters): the deployment's own folder or bucket and the configured ones."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from bananaflow.catalog.locations import BUCKETS_ENV, ROOTS_ENV, LocationPolicy, allowing, check_location
from bananaflow.errors import ConfigurationError


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "catalog.csv").write_text("sku,title\nA,Mug\n")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".pgpass").write_text("db:5432:shop:admin:hunter2\n")
    (feeds / "escape.csv").symlink_to(tmp_path / "home" / ".pgpass")
    return tmp_path


def refused(location: str, policy: LocationPolicy) -> str:
    with pytest.raises(ConfigurationError) as caught:
        check_location(location, policy)
    message = caught.value.message
    assert "\n" not in message and "hunter2" not in message
    return message


def test_only_the_deployments_own_folder_by_default(shop: Path) -> None:
    policy = LocationPolicy.for_deployment(str(shop / "feeds" / "catalog.csv"), environ={})
    check_location(str(shop / "feeds" / "catalog.csv"), policy)
    check_location(str(shop / "feeds" / "new" / "other.csv"), policy)
    for location in (str(shop / "home" / ".pgpass"), "/etc/passwd", "~/.pgpass", str(shop / "feeds" / "escape.csv"),
                     str(shop / "feeds" / ".." / "home" / ".pgpass"), "s3://any-bucket/catalog.csv",
                     "file:///etc/passwd", "/proc/self/environ"):
        assert "is outside the locations this deployment may read" in refused(location, policy)


def test_nothing_without_an_own_catalog_or_settings() -> None:
    for own in (None, "", "{{ $BANANAFLOW_CATALOG }}"):
        policy = LocationPolicy.for_deployment(own, environ={})
        assert policy == LocationPolicy()
        refused("/srv/feeds/catalog.csv", policy)
        refused("s3://shop-feeds/catalog.csv", policy)


def test_settings_add_roots_and_buckets_and_dot_segments_cannot_leave_them(shop: Path) -> None:
    env = {ROOTS_ENV: str(shop / "feeds") + os.pathsep + str(shop / "more"), BUCKETS_ENV: "shop-feeds, partner"}
    policy = LocationPolicy.for_deployment("s3://nightly/catalog.csv", environ=env)
    check_location(str(shop / "feeds" / "catalog.csv"), policy)
    for location in ("s3://shop-feeds/catalog.csv", "s3://partner/a/b.csv", "s3://nightly/x.csv"):
        check_location(location, policy)
    for location in ("s3://shop-feeds/../finance/q3.csv", "s3://nightly/a/../../finance/x.csv", "s3://shop-feeds",
                     "s3://finance/x.csv", "s3://shop-feeds/..", "s3://shop-feeds-evil/x.csv"):
        refused(location, policy)


def test_a_control_character_in_the_location_stays_on_one_line() -> None:
    message = refused("/etc/passwd\nINFO all good", LocationPolicy())
    assert message.startswith("catalog /etc/passwd?INFO all good is outside")


def test_a_local_stack_allows_the_catalog_it_deployed(shop: Path) -> None:
    env = allowing({ROOTS_ENV: "/srv/a"}, str(shop / "feeds" / "catalog.csv"))
    assert env[ROOTS_ENV] == "/srv/a" + os.pathsep + os.path.realpath(shop / "feeds")
    assert allowing({}, "s3://shop/feeds/c.csv")[BUCKETS_ENV] == "shop"


@pytest.mark.parametrize(("name", "content"), [
    (".pgpass", "db.internal:5432:shop:admin:SECRET-1\n"),
    (".env", "DATABASE_URL=postgres://admin:SECRET-1@db/shop\nAPI_KEY=SECRET-2\n"),
    ("passwd", "root:x:0:0:SECRET-1:/root:/bin/bash\ndaemon:x:1:1:SECRET-2:/usr/sbin:/usr/sbin/nologin\n"),
    ("key.json", '{"type": "service_account", "private_key": "SECRET-1", "client_email": "SECRET-2"}\n'),
    ("token.txt", "SECRET-1\n"),
    ("config.xml", "<config><password>SECRET-1</password></config>"),
    ("notes.csv", "SECRET-1,SECRET-2,title\nSECRET-3,SECRET-4,x\n"),
])
def test_no_refusal_quotes_a_file_that_is_not_a_catalog(tmp_path: Path, name: str, content: str) -> None:
    from bananaflow.catalog.loader import load_catalog
    from bananaflow.errors import CatalogError

    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load_catalog(str(path))
    message = caught.value.message
    assert "SECRET" not in message and "admin" not in message and "\n" not in message
    assert name in message
