from __future__ import annotations

from datetime import UTC, datetime, timedelta

from deployer.lifecycle.image_gc import Owner, deployment_of, stale_tags

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def tag(dep: str, digest: str = "aaaaaaaaaaaa") -> str:
    return f"deployer/app-{dep}:{digest}"


def test_only_app_tags_name_a_deployment() -> None:
    assert deployment_of(tag("d1")) == "d1"
    assert deployment_of("deployer/agent-base:latest") is None
    assert deployment_of("python:3.11") is None


def test_an_active_deployment_keeps_every_tag_even_one_it_has_not_recorded_yet() -> None:
    owners = {"d1": Owner("building", None, None), "d2": Owner("running", tag("d2"), None)}
    assert stale_tags([tag("d1"), tag("d2"), tag("d2", "bbbbbbbbbbbb")], owners, now=NOW, keep_days=7) == []


def test_a_recently_stopped_deployment_keeps_its_image_but_not_superseded_builds() -> None:
    owners = {"d1": Owner("stopped", tag("d1", "new"), NOW - timedelta(days=6))}
    assert stale_tags([tag("d1", "old"), tag("d1", "new")], owners, now=NOW, keep_days=7) == [tag("d1", "old")]


def test_a_long_stopped_deployment_loses_its_image_unless_retention_is_zero() -> None:
    owners = {"d1": Owner("crashed", tag("d1"), NOW - timedelta(days=8))}
    assert stale_tags([tag("d1")], owners, now=NOW, keep_days=7) == [tag("d1")]
    assert stale_tags([tag("d1")], owners, now=NOW, keep_days=0) == []


def test_a_tag_without_a_row_here_and_foreign_images_are_never_touched() -> None:
    # another installation on the same Docker host may own a deployer/app-* tag we have no row for
    assert stale_tags([tag("elsewhere"), "deployer/agent-base:latest", "busybox:1"], {}, now=NOW, keep_days=7) == []


def test_naive_timestamps_from_sqlite_compare_as_utc() -> None:
    owners = {"d1": Owner("failed", tag("d1"), (NOW - timedelta(days=9)).replace(tzinfo=None))}
    assert stale_tags([tag("d1")], owners, now=NOW, keep_days=7) == [tag("d1")]
