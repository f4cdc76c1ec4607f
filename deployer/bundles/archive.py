"""Unpacking an uploaded zip without ever writing outside the target directory.

Decide (`plan`): from the archive's directory alone, refuse what is hostile (absolute paths, `..`,
links, devices, encryption, too many files, too many bytes declared), drop skipped folders and strip a
single wrapper folder. Apply (`extract`): write the planned files, counting the bytes actually
inflated (headers can lie) and refusing to follow or replace anything already on disk.
"""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from deployer.errors import InvalidUpload, UploadTooLarge

SKIPPED_DIRS = frozenset({".git", ".venv", "__pycache__", "node_modules", "__MACOSX"})
_CHUNK = 64 * 1024


ENTRIES_PER_FILE = 4  # skipped folders (node_modules …) may hold more entries than the bundle keeps
MAX_NAME_BYTES = 255  # a path component longer than this cannot be created on common filesystems
MAX_PATH_BYTES = 1024


@dataclass(frozen=True)
class Limits:
    max_unpacked_bytes: int
    max_files: int

    @property
    def max_entries(self) -> int:
        return self.max_files * ENTRIES_PER_FILE


@dataclass(frozen=True)
class Member:
    """What the zip's central directory says about one entry."""

    name: str
    mode: int  # unix mode bits from external_attr; 0 when the zipper recorded none
    size: int
    encrypted: bool = False


@dataclass(frozen=True)
class Planned:
    source: str  # name in the archive
    dest: str  # relative posix path under the target


def _parts(name: str) -> list[str]:
    if "\x00" in name:
        raise InvalidUpload("Archive entry name contains a NUL byte")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise InvalidUpload(f"Archive entry has an absolute path: {name[:100]!r}")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidUpload(f"Archive entry escapes the bundle with '..': {name[:100]!r}")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES or any(
        len(p.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for p in parts
    ):
        raise InvalidUpload(f"Archive entry name is too long (over {MAX_NAME_BYTES} bytes a part): {name[:60]!r}…")
    return parts


def _check_type(m: Member) -> bool:
    """True for a directory entry; refuses links and special files."""
    kind = stat.S_IFMT(m.mode)
    if kind == stat.S_IFLNK:
        raise InvalidUpload(f"Archive entry is a symbolic link: {m.name[:100]!r}")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise InvalidUpload(f"Archive entry is a special file (device, fifo or socket): {m.name[:100]!r}")
    if m.encrypted:
        raise InvalidUpload(f"Archive entry is encrypted: {m.name[:100]!r}")
    return kind == stat.S_IFDIR or m.name.endswith(("/", "\\"))


def _strip_wrapper(files: list[tuple[Member, list[str]]]) -> int:
    tops = {parts[0] for _, parts in files}
    if len(tops) == 1 and all(len(parts) > 1 for _, parts in files):
        return 1
    return 0


def plan(members: list[Member], limits: Limits) -> list[Planned]:
    files: list[tuple[Member, list[str]]] = []
    for m in members:
        parts = _parts(m.name)
        is_dir = _check_type(m)
        if is_dir or not parts or SKIPPED_DIRS.intersection(parts[:-1]):
            continue
        files.append((m, parts))
    if not files:
        raise InvalidUpload("Archive contains no files")
    if len(files) > limits.max_files:
        raise InvalidUpload(f"Archive has {len(files)} files; the limit is {limits.max_files}")
    declared = sum(m.size for m, _ in files)
    if declared > limits.max_unpacked_bytes:
        raise UploadTooLarge(f"Archive unpacks to {declared} bytes; the limit is {limits.max_unpacked_bytes}")
    strip = _strip_wrapper(files)
    out: list[Planned] = []
    file_keys: set[str] = set()
    dir_keys: set[str] = set()
    for m, parts in files:
        rel = parts[strip:]
        dest = "/".join(rel)
        # Case-insensitive, so the tree unpacks the same on every filesystem.
        key = dest.lower()
        prefixes = {"/".join(rel[:i]).lower() for i in range(1, len(rel))}
        if key in file_keys or key in dir_keys or prefixes & file_keys:
            raise InvalidUpload(f"Archive has conflicting entries for {dest[:100]!r}")
        file_keys.add(key)
        dir_keys |= prefixes
        out.append(Planned(source=m.name, dest=dest))
    return out


def members_of(zf: zipfile.ZipFile) -> list[Member]:
    return [
        Member(
            name=i.filename,
            mode=(i.external_attr >> 16) & 0xFFFF,
            size=i.file_size,
            encrypted=bool(i.flag_bits & 1),
        )
        for i in zf.infolist()
    ]


def declared_entries(stream: IO[bytes]) -> int | None:
    """The entry count in the zip's end record, read before the central directory is parsed (a zip
    of 100 000 tiny entries costs seconds and memory to parse); None when there is no end record."""
    end = zipfile._EndRecData(stream)  # type: ignore[attr-defined]  # stable since Python 2
    stream.seek(0)
    return None if not end else int(end[zipfile._ECD_ENTRIES_TOTAL])  # type: ignore[attr-defined]


def open_zip(stream: IO[bytes], limits: Limits | None = None) -> zipfile.ZipFile:
    try:
        if limits is not None and (declared_entries(stream) or 0) > limits.max_entries:
            raise InvalidUpload(
                f"Archive has more than {limits.max_entries} entries (counting folders and skipped ones like "
                f"node_modules/); the bundle limit is {limits.max_files} files"
            )
        return zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InvalidUpload(f"project.zip is not a valid zip archive ({exc})") from None


def _write(zf: zipfile.ZipFile, item: Planned, target: Path, budget: int) -> int:
    dest = target.joinpath(*PurePosixPath(item.dest).parts)
    if not dest.resolve().is_relative_to(target.resolve()):
        raise InvalidUpload(f"Archive entry escapes the bundle: {item.source[:100]!r}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    written = 0
    with zf.open(item.source) as src, os.fdopen(os.open(dest, flags, 0o644), "wb") as out:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > budget:
                raise UploadTooLarge("Archive unpacks to more bytes than the limit allows")
            out.write(chunk)
    return written


def extract(stream: IO[bytes], target: Path, limits: Limits) -> list[str]:
    """Validate and unpack into the empty directory `target`; return the relative paths written."""
    with open_zip(stream, limits) as zf:
        planned = plan(members_of(zf), limits)
        budget = limits.max_unpacked_bytes
        try:
            for item in planned:
                budget -= _write(zf, item, target, budget)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            raise InvalidUpload(f"project.zip is corrupt ({type(exc).__name__}: {exc})"[:300]) from None
    return [p.dest for p in planned]
