"""Naming a deployment on the command line, as docker names containers: id, slug or a unique id prefix."""

from __future__ import annotations

import pytest

from cli.client import ApiError, pick, unreachable

ROWS = [
    {"id": "3f2a9c10-0000-4000-8000-000000000001", "slug": "echo-agent-k2v9"},
    {"id": "3f2b1111-0000-4000-8000-000000000002", "slug": "weather-x81q"},
    {"id": "a0000000-0000-4000-8000-000000000003", "slug": "3f2"},
]


def test_a_full_id_a_slug_and_a_unique_prefix_each_name_their_deployment() -> None:
    assert pick("3f2a9c10-0000-4000-8000-000000000001", ROWS) == ROWS[0]["id"]
    assert pick("weather-x81q", ROWS) == ROWS[1]["id"]
    assert pick("3f2a", ROWS) == ROWS[0]["id"]
    assert pick("A0", ROWS) == ROWS[2]["id"]  # ids are lower-case hex; a prefix typed in capitals still matches


def test_a_slug_wins_over_an_id_prefix_it_happens_to_share() -> None:
    assert pick("3f2", ROWS) == ROWS[2]["id"]


def test_an_ambiguous_prefix_is_refused_with_the_candidates_listed() -> None:
    with pytest.raises(ApiError) as err:
        pick("3f", ROWS)
    assert err.value.code == "AMBIGUOUS"
    assert "'3f' matches 2 deployments" in err.value.message
    assert "3f2a9c10-0000-4000-8000-000000000001  echo-agent-k2v9" in err.value.message
    assert "3f2b1111-0000-4000-8000-000000000002  weather-x81q" in err.value.message


def test_a_name_that_matches_nothing_says_so() -> None:
    with pytest.raises(ApiError, match=r"No deployment matches 'zz' \(by id, id prefix or slug\)"):
        pick("zz", ROWS)
    with pytest.raises(ApiError, match="No deployment matches ''"):
        pick("", ROWS)


def test_the_unreachable_message_names_deployer_url_and_hides_a_path_token() -> None:
    message = unreachable("http://127.0.0.1:8000/t/dpl_secret")
    assert "http://127.0.0.1:8000/t/***" in message and "dpl_secret" not in message
    assert "(DEPLOYER_URL)" in message and "export DEPLOYER_URL" in message
