from __future__ import annotations

import json
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deployer.bundles.keypair import parse_keypair
from deployer.bundles.slug import is_dns_label, make_slug
from deployer.errors import InvalidUpload
from deployer.scrub import scrub


def fixed(_n: int) -> str:
    return "abc123"


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Echo Agent", "echo-agent-abc123"),
        ("  --Weird__Name!!  ", "weird-name-abc123"),
        ("a" * 80, "a" * 36 + "-abc123"),
        ("x.example.com} reverse_proxy evil", "x-example-com-reverse-proxy-evil-abc123"),
        ("Ünïcode Bot 42", "n-code-bot-42-abc123"),
    ],
)
def test_slugs_are_lowercase_dns_labels_with_a_hex_suffix(name: str, slug: str) -> None:
    assert make_slug(name, fixed) == slug


@pytest.mark.parametrize("name", ["", "ab", "!!", "é", "--"])
def test_names_without_three_usable_characters_are_refused(name: str) -> None:
    with pytest.raises(InvalidUpload, match="at least 3"):
        make_slug(name, fixed)


@given(st.text(max_size=200))
def test_any_name_gives_a_valid_dns_label_or_a_clear_refusal(name: str) -> None:
    try:
        slug = make_slug(name)
    except InvalidUpload:
        return
    assert is_dns_label(slug) and len(slug) <= 43
    assert set(slug) <= set(string.ascii_lowercase + string.digits + "-")


SECRET = "U0VDUkVULXByaXZhdGUta2V5"


def test_a_valid_keypair_parses_and_hides_its_private_key_in_repr() -> None:
    kp = parse_keypair(json.dumps({"public_key": "cHVi", "private_key": SECRET}).encode())
    assert kp.private_key == SECRET
    assert SECRET not in repr(kp) and SECRET not in str(kp)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (json.dumps({"public_key": "cHVi"}).encode(), "private_key"),
        (json.dumps({"public_key": "cHVi", "private_key": 5}).encode(), "private_key"),
        (json.dumps({"public_key": "cHVi", "private_key": SECRET + "!{}"}).encode(), "must be base64"),
        (json.dumps({"public_key": "p u b", "private_key": SECRET}).encode(), "public_key must be base64"),
        (b"x" * 70000, "larger than"),
    ],
)
def test_a_bad_keypair_is_refused_without_echoing_the_private_key(raw: bytes, problem: str) -> None:
    with pytest.raises(InvalidUpload) as err:
        parse_keypair(raw)
    assert problem in err.value.message
    assert SECRET not in err.value.message and SECRET not in str(err.value)


def test_scrub_removes_age_identities_private_keys_tokens_and_named_secrets() -> None:
    text = (
        'boom AGE-SECRET-KEY-1QQQQQQQQQQQQ {"private_key": "' + SECRET + '"} '
        "Authorization: Bearer dpl_abcdef hunter22"
    )
    out = scrub(text, secrets=["hunter22"])
    for leaked in ("AGE-SECRET-KEY-1Q", SECRET, "dpl_abcdef", "hunter22"):
        assert leaked not in out


def test_scrub_caps_messages_at_500_characters() -> None:
    assert len(scrub("x" * 2000)) == 500
