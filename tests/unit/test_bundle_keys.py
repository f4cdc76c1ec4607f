"""Keys stay out of images: a project holding a keypair, or any JSON with a `private_key`
member, is refused with a message that points at the keypair.json upload field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployer.bundles.rules import inspect_bundle
from deployer.errors import InvalidUpload

AGENT = {"agent.config.json": json.dumps({"name": "My Agent"}), "agent.py": "print(1)"}
KEYPAIR = json.dumps({"public_key": "cHVi", "private_key": "c2VjcmV0", "derived_from": "dev"})


def tree(tmp_path: Path, files: dict[str, str | bytes]) -> tuple[Path, list[str]]:
    for rel, data in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
    return tmp_path, list(files)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"keypair.json": KEYPAIR}, "keypair.json"),
        ({"keys/agent/keypair.json": KEYPAIR}, "keys/agent/keypair.json"),
        ({"KeyPair.JSON": KEYPAIR}, "KeyPair.JSON"),
        ({"deep/er/KEYPAIR.json": "not even json"}, "deep/er/KEYPAIR.json"),
        ({".agent/config.json": json.dumps({"name": "x", "private_key": "c2VjcmV0"})}, ".agent/config.json"),
        ({"cfg/Settings.JSON": json.dumps({"a": {"b": [{"private_key": None}]}})}, "cfg/Settings.JSON"),
        ({"spaced.json": '{\n  "private_key"   :\n "x"}'}, "spaced.json"),
        ({"with-comments.json": '// tsconfig-like\n{"private_key": "x",}'}, "with-comments.json"),
    ],
)
def test_a_project_holding_a_private_key_is_refused_and_told_where_the_key_goes(
    tmp_path: Path, extra: dict[str, str], named: str
) -> None:
    with pytest.raises(InvalidUpload) as err:
        inspect_bundle(*tree(tmp_path, {**AGENT, **extra}))
    assert err.value.message.startswith(named)
    assert "keypair.json upload field" in err.value.message and "not in the project" in err.value.message
    assert "c2VjcmV0" not in err.value.message


def test_a_private_key_member_is_found_past_the_first_megabyte_and_across_a_chunk_edge(tmp_path: Path) -> None:
    for pad in (1024 * 1024 - 5, 1024 * 1024 - 14, 3 * 1024 * 1024):
        big = b'{"pad": "' + b"x" * pad + b'", "private_key": "k"}'
        with pytest.raises(InvalidUpload, match=r"big\.json holds a private_key"):
            inspect_bundle(*tree(tmp_path, {**AGENT, "big.json": big}))


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"note": 'the "private_key": field goes elsewhere'}),  # inside a string: escaped quotes
        json.dumps({"private_key_path": "/app/keypair.json", "public_key": "cHVi"}),
        json.dumps({"privateKey": "not our spelling"}),
    ],
)
def test_json_that_only_mentions_keys_is_accepted(tmp_path: Path, text: str) -> None:
    info = inspect_bundle(*tree(tmp_path, {**AGENT, "data/notes.json": text, "keypair.json.md": "docs"}))
    assert info.runtime == "python"


def test_other_credential_names_compare_case_insensitively_too(tmp_path: Path) -> None:
    for extra in ({"Developer.JSON": "{}"}, {".Zynd/Developer/key": "x"}, {".ENV": "ZYND_DEVELOPER_SEED=x"}):
        with pytest.raises(InvalidUpload):
            inspect_bundle(*tree(tmp_path / str(len(list(tmp_path.iterdir()))), {**AGENT, **extra}))
