"""HTTP/1.1 chunked decoding (watcher/chunked.py): whatever the chunk sizes and wherever the reads
split the bytes, the body comes out whole, and the last chunk ends it."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from watcher.chunked import ChunkDecoder


def encode(chunks: list[bytes], extensions: bool) -> bytes:
    ext = b";name=value" if extensions else b""
    return b"".join(b"%x%s\r\n%s\r\n" % (len(c), ext, c) for c in chunks) + b"0\r\n\r\n"


@given(chunks=st.lists(st.binary(min_size=1, max_size=300), max_size=40), extensions=st.booleans(),
       cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=30))  # fmt: skip
def test_any_split_of_any_chunked_body_decodes_to_the_payload(chunks: list[bytes], extensions: bool,
                                                              cuts: list[int]) -> None:  # fmt: skip
    wire = encode(chunks, extensions) + b"trailing bytes after the body are not payload"
    points = sorted({0, len(wire), *(c % (len(wire) + 1) for c in cuts)})
    decoder = ChunkDecoder()
    out = b"".join(decoder.feed(wire[a:b]) for a, b in itertools.pairwise(points))
    assert out == b"".join(chunks)
    assert decoder.done


def test_a_body_cut_before_its_last_chunk_is_not_done() -> None:
    decoder = ChunkDecoder()
    assert decoder.feed(b"5\r\nhello\r\n3\r\nab") == b"helloab"
    assert not decoder.done
    assert decoder.feed(b"c\r\n") == b"c" and not decoder.done
