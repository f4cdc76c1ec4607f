"""Signed ingest, checked against values computed here independently with hmac/hashlib."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from traces.signing import Request, sign, verify

SECRET, KEY = "s3cret", "key-1"
BODY = b'{"entry":{}}'
NOW = 1_795_435_200_000


def expected_signature(method: str, path: str, search: str, ts: str, nonce: str, body: bytes) -> str:
    text = f"{method}\n{path}\n{search}\n{ts}\n{nonce}\n{hashlib.sha256(body).hexdigest()}"
    return hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()


def test_the_signature_is_hmac_sha256_of_the_six_canonical_fields() -> None:
    headers = sign(method="post", path="/zin/trace/write", search="?a=1", body=BODY, key_id=KEY, secret=SECRET,
                   now_ms=NOW, nonce="n-1")  # fmt: skip
    assert headers == {
        "x-zt-key-id": KEY, "x-zt-timestamp": str(NOW), "x-zt-nonce": "n-1",
        "x-zt-body-sha256": hashlib.sha256(BODY).hexdigest(),
        "x-zt-signature": expected_signature("POST", "/zin/trace/write", "?a=1", str(NOW), "n-1", BODY),
    }  # fmt: skip


def check(req: Request, *, now: int = NOW, seen: set[str] | None = None) -> tuple[int, str] | None:
    store = set() if seen is None else seen

    def remember(nonce: str, _expires: int) -> bool:
        if nonce in store:
            return False
        store.add(nonce)
        return True

    r = verify(req, key_id=KEY, secret=SECRET, window_ms=60_000, now_ms=now, remember_nonce=remember)
    return None if r is None else (r.status, r.code)


def request(body: bytes = BODY, path: str = "/zin/trace/write", **override: str) -> Request:
    headers = sign(method="POST", path="/zin/trace/write", search="", body=BODY, key_id=KEY, secret=SECRET,
                   now_ms=NOW, nonce="n-1")  # fmt: skip
    headers.update(override)
    return Request("POST", path, "", {k: v for k, v in headers.items() if v}, body)


def test_a_genuine_request_passes_once_and_its_replay_is_a_401() -> None:
    seen: set[str] = set()
    assert check(request(), seen=seen) is None
    assert check(request(), seen=seen) == (401, "REPLAYED")


@pytest.mark.parametrize(
    ("req", "now", "expected"),
    [
        (request(b'{"entry":[1]}'), NOW, (403, "INVALID_BODY_SHA")),  # tampered body
        (request(path="/zin/trace/update"), NOW, (403, "INVALID_SIGNATURE")),  # tampered path
        (request(), NOW + 60_001, (401, "EXPIRED")),  # expired timestamp
        (request(**{"x-zt-key-id": "other"}), NOW, (403, "UNKNOWN_KEY")),
        (request(**{"x-zt-nonce": ""}), NOW, (403, "MISSING_HEADER")),
        (request(**{"x-zt-timestamp": "soon"}), NOW, (403, "INVALID_TIMESTAMP")),
        (request(**{"x-zt-signature": "0" * 64}), NOW, (403, "INVALID_SIGNATURE")),
    ],
)
def test_every_kind_of_forgery_gets_its_code_and_status(req: Request, now: int, expected: tuple[int, str]) -> None:
    assert check(req, now=now) == expected


def test_checks_run_in_the_designed_order_so_an_expired_forgery_is_reported_expired() -> None:
    forged = request(b"tampered", **{"x-zt-key-id": "other", "x-zt-signature": "0" * 64})
    assert check(forged, now=NOW + 120_000) == (401, "EXPIRED")
    assert check(forged) == (403, "INVALID_BODY_SHA")


def test_the_timestamp_is_read_as_javascript_parseint_reads_it_and_signed_as_the_number() -> None:
    from traces.signing import parse_timestamp

    assert parse_timestamp(f" {NOW}.5ms") == NOW and parse_timestamp("-5") == -5
    assert parse_timestamp("soon") is None and parse_timestamp("") is None
    # The reference verifies over String(parseInt(header)): a sender that wrote "00…" signed the number.
    headers = sign(method="POST", path="/zin/trace/write", search="", body=BODY, key_id=KEY, secret=SECRET,
                   now_ms=NOW, nonce="n-2")  # fmt: skip
    assert check(Request("POST", "/zin/trace/write", "", {**headers, "x-zt-timestamp": f"00{NOW}"}, BODY)) is None


def test_the_replay_guard_keeps_the_nonce_under_its_key_id_until_the_window_closes() -> None:
    kept: list[tuple[str, int]] = []

    def remember(key: str, expires: int) -> bool:
        kept.append((key, expires))
        return True

    assert verify(request(), key_id=KEY, secret=SECRET, window_ms=60_000, now_ms=NOW, remember_nonce=remember) is None
    assert kept == [(f"{KEY}:n-1", NOW + 60_000)]
