from __future__ import annotations

import contextlib
import io
import os
import stat
import tempfile
import warnings
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployer.bundles.archive import Limits, Member, extract, plan
from deployer.errors import InvalidUpload, UploadTooLarge
from tests.support.zips import make_zip

LIMITS = Limits(max_unpacked_bytes=1024 * 1024, max_files=50)


def unpack(data: bytes, tmp_path: Path, limits: Limits = LIMITS) -> list[str]:
    target = tmp_path / "target"
    target.mkdir()
    return extract(io.BytesIO(data), target, limits)


def test_a_plain_bundle_unpacks_every_file(tmp_path: Path) -> None:
    files = unpack(make_zip({"agent.py": "x", "pkg/mod.py": "y"}), tmp_path)
    assert sorted(files) == ["agent.py", "pkg/mod.py"]
    assert (tmp_path / "target/pkg/mod.py").read_text() == "y"


def test_a_single_wrapper_folder_is_stripped(tmp_path: Path) -> None:
    files = unpack(make_zip({"project/agent.py": "x", "project/lib/a.py": "y"}), tmp_path)
    assert sorted(files) == ["agent.py", "lib/a.py"]


def test_skipped_folders_are_not_unpacked_and_do_not_block_wrapper_stripping(tmp_path: Path) -> None:
    data = make_zip({
        "proj/agent.py": "x", "proj/.git/config": "g", "proj/node_modules/m/index.js": "m",
        "proj/.venv/bin/python": "v", "proj/pkg/__pycache__/a.pyc": "c", "__MACOSX/proj/._agent.py": "mac",
    })  # fmt: skip
    assert unpack(data, tmp_path) == ["agent.py"]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("/etc/passwd", "absolute path"),
        ("C:/Windows/evil.py", "absolute path"),
        ("../escape.py", "'..'"),
        ("app/../../escape.py", "'..'"),
        ("app\\..\\..\\escape.py", "'..'"),
        ("bad\x00name.py", "NUL"),
    ],
)
def test_hostile_paths_are_refused_with_a_message_naming_the_problem(name: str, problem: str) -> None:
    with pytest.raises(InvalidUpload) as err:
        plan([Member(name=name, mode=stat.S_IFREG | 0o644, size=1)], LIMITS)
    assert problem in err.value.message


@pytest.mark.parametrize(
    ("mode", "problem"),
    [
        (stat.S_IFLNK | 0o777, "symbolic link"),
        (stat.S_IFCHR | 0o644, "special file"),
        (stat.S_IFBLK | 0o644, "special file"),
        (stat.S_IFIFO | 0o644, "special file"),
        (stat.S_IFSOCK | 0o644, "special file"),
    ],
)
def test_links_and_special_files_are_refused(tmp_path: Path, mode: int, problem: str) -> None:
    data = make_zip({"agent.py": "x", "evil": "/etc/passwd"}, modes={"evil": mode})
    with pytest.raises(InvalidUpload) as err:
        unpack(data, tmp_path)
    assert problem in err.value.message
    assert not (tmp_path / "target" / "evil").exists()


def test_too_many_files_is_refused() -> None:
    members = [Member(f"f{i}.py", stat.S_IFREG, 1) for i in range(51)]
    with pytest.raises(InvalidUpload, match="51 files; the limit is 50"):
        plan(members, LIMITS)


def test_declared_size_over_the_limit_is_refused_before_unpacking() -> None:
    with pytest.raises(UploadTooLarge, match="limit"):
        plan([Member("big.bin", stat.S_IFREG, 2 * 1024 * 1024)], LIMITS)


def test_a_zip_bomb_is_stopped_by_counting_inflated_bytes(tmp_path: Path) -> None:
    data = make_zip({"agent.py": "x", "bomb.bin": b"\0" * (3 * 1024 * 1024)})
    with pytest.raises(UploadTooLarge):
        unpack(data, tmp_path)


def test_a_lying_size_header_cannot_get_past_the_byte_budget(tmp_path: Path) -> None:
    data = bytearray(make_zip({"bomb.bin": b"\0" * (2 * 1024 * 1024)}))
    # Rewrite the central directory's uncompressed size to claim 10 bytes.
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (10).to_bytes(4, "little")
    with pytest.raises((UploadTooLarge, InvalidUpload)):
        unpack(bytes(data), tmp_path, Limits(max_unpacked_bytes=1024 * 1024, max_files=5))


def test_entries_that_collide_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidUpload, match="conflicting"):
        unpack(make_zip({"Agent.py": "a", "agent.py": "b"}), tmp_path)
    with pytest.raises(InvalidUpload, match="conflicting"):
        plan([Member("a", stat.S_IFREG, 1), Member("a/b", stat.S_IFREG, 1)], LIMITS)


def test_something_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidUpload, match="not a valid zip"):
        unpack(b"this is not a zip", tmp_path)


def test_an_empty_archive_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidUpload, match="no files"):
        unpack(make_zip({}), tmp_path)


def test_encrypted_entries_are_refused() -> None:
    with pytest.raises(InvalidUpload, match="encrypted"):
        plan([Member("a.py", stat.S_IFREG, 1, encrypted=True)], LIMITS)


segments = st.sampled_from(["a", "b", ".", "..", "", "\\", "C:", "\x00", " ", "~", "x/../..", "/etc"])
names = st.lists(segments, min_size=1, max_size=6)
modes = st.sampled_from([0, stat.S_IFREG | 0o644, stat.S_IFDIR | 0o755, stat.S_IFLNK | 0o777, stat.S_IFIFO])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(st.tuples(names.map("/".join), modes, st.binary(max_size=64)), min_size=1, max_size=8))
def test_whatever_the_archive_nothing_is_written_outside_the_target(entries: list[tuple[str, int, bytes]]) -> None:
    with tempfile.TemporaryDirectory() as outer_dir:
        outer = Path(outer_dir)
        target = outer / "deep" / "target"
        target.mkdir(parents=True)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duplicate names are part of the hostile corpus
            for name, mode, data in entries:
                info = zipfile.ZipInfo(name)
                info.external_attr = (mode & 0xFFFF) << 16
                zf.writestr(info, data)
        with contextlib.suppress(InvalidUpload, UploadTooLarge):
            extract(io.BytesIO(buf.getvalue()), target, LIMITS)
        for dirpath, dirnames, filenames in os.walk(outer):
            for entry in [*dirnames, *filenames]:
                path = Path(dirpath) / entry
                assert not path.is_symlink()
                if path not in (outer / "deep", target):
                    assert path.resolve().is_relative_to(target.resolve()), path


def test_a_zip_of_masses_of_skipped_entries_is_refused_before_its_directory_is_parsed(tmp_path: Path) -> None:
    data = make_zip({"agent.py": "x", **{f"node_modules/p{i}/index.js": "" for i in range(LIMITS.max_entries)}})
    with pytest.raises(InvalidUpload, match=r"more than 200 entries .*node_modules"):
        unpack(data, tmp_path)
    assert not any((tmp_path / "target").iterdir())


def test_a_zip_with_fewer_entries_than_the_cap_still_skips_node_modules(tmp_path: Path) -> None:
    data = make_zip({"agent.py": "x", **{f"node_modules/p{i}.js": "" for i in range(LIMITS.max_entries - 1)}})
    assert unpack(data, tmp_path) == ["agent.py"]


@pytest.mark.parametrize("name", ["a" * 256 + ".py", "pkg/" + "é" * 128 + "/x.py", "/".join(["d" * 200] * 6)])
def test_an_entry_name_too_long_for_a_filesystem_is_a_clear_refusal(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidUpload, match="too long"):
        unpack(make_zip({"agent.py": "x", name: "y"}), tmp_path)
