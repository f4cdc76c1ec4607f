"""HTTP/1.1 chunked transfer decoding for Docker's log streams, read straight from the socket buffer.

Docker sends every log frame as its own HTTP chunk. Read through http.client, each chunk costs
several Python calls (size line, data, CRLF), and at hundreds of thousands of frames a second that,
not the database, is the tailer's ceiling. `ChunkDecoder` (pure) turns whatever bytes have arrived
into payload in one pass; `body_reader` puts it over the response's own buffered socket reader.
"""

from __future__ import annotations

from typing import Any

from deployer.lifecycle import dockerapi


class ChunkDecoder:
    def __init__(self) -> None:
        self.left = 0  # payload bytes still due in the current chunk
        self.skip = 0  # bytes of the CRLF that ends a chunk's data, still to drop
        self.head = b""  # a size line split across reads
        self.done = False  # the last (zero-size) chunk was seen

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        pos, n = 0, len(data)
        find = data.find
        while pos < n and not self.done:
            if self.skip:
                step = min(self.skip, n - pos)
                self.skip -= step
                pos += step
            elif self.left:
                step = min(self.left, n - pos)
                out.append(data[pos : pos + step])
                self.left -= step
                pos += step
                if not self.left:
                    self.skip = 2
            elif not self.head and (end := find(b"\n", pos)) > 0:
                # The common case, once per chunk: its size line, data and CRLF all in this read.
                try:
                    size = int(data[pos:end], 16)  # int() ignores the CR; extensions take the slow path
                except ValueError:
                    pos = self._size_line(data, pos)
                    continue
                start = end + 1
                if size and start + size + 2 <= n:
                    out.append(data[start : start + size])
                    pos = start + size + 2
                else:
                    self.done, self.left, pos = size == 0, size, start
            else:
                pos = self._size_line(data, pos)
        return b"".join(out)

    def _size_line(self, data: bytes, pos: int) -> int:
        end = data.find(b"\n", pos)
        if end < 0:
            self.head += data[pos:]
            return len(data)
        line, self.head = self.head + data[pos:end], b""
        size = int(line.split(b";", 1)[0].strip(), 16)  # chunk extensions are allowed and ignored
        self.done = size == 0
        self.left = size
        return end + 1


class ChunkedBody:
    """A `read1` over the decoded body: returns what has arrived (at least one byte), b"" at the end."""

    def __init__(self, fp: Any) -> None:
        self.fp, self.decoder = fp, ChunkDecoder()

    def read1(self, size: int = 1 << 16) -> bytes:
        while not self.decoder.done:
            data = self.fp.read1(size)
            if not data:
                return b""
            out = self.decoder.feed(data)
            if out:
                return out
        return b""

    read = read1


def body_reader(response: Any) -> Any:
    """The fast reader when the response is chunked and nothing of its body was read yet; else urllib3's."""
    fp = dockerapi.unread_chunked_socket(response)
    return ChunkedBody(fp) if fp is not None else dockerapi.raw_body(response)
