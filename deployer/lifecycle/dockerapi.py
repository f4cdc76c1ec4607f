"""The Docker API calls docker-py has no public method for, in one place.

Two streams are read raw rather than through docker-py's helpers: a container's log, whose frames the
watcher decodes itself (docker-py's reader costs more per line than storing the line), and an image
build, whose stream a deadline must be able to hang up on while its reader is blocked. Both need
docker-py's private request helpers and the socket under a streamed response; nothing outside this
module reaches into docker-py, requests or urllib3 internals.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

# ---- container logs ------------------------------------------------------------------------------


def since_param(ns: int) -> str:
    """Docker's `since` for a time in ns since the epoch: seconds, a dot, nine fraction digits."""
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def open_log_stream(client: Any, container_id: str, *, since_ns: int = 0, follow: bool) -> Any:
    """`GET /containers/{id}/logs`, both streams, timestamped, from `since_ns` (inclusive; 0: from the
    start), streamed and unread. An error status raises requests' HTTPError, its `response` set."""
    api = client.api
    params: dict[str, Any] = {"stdout": 1, "stderr": 1, "follow": int(follow), "timestamps": 1}
    if since_ns:
        params["since"] = since_param(since_ns)
    resp = api._get(api._url("/containers/{0}/logs", container_id), params=params, stream=True)
    resp.raise_for_status()
    return resp


def unread_chunked_socket(response: Any) -> Any:
    """The buffered socket reader under a streamed response whose body is chunked and not read at all
    yet — the caller then decodes the chunks itself — else None."""
    http = getattr(response.raw, "_fp", None)
    fp = getattr(http, "fp", None)
    if getattr(http, "chunked", False) and getattr(http, "chunk_left", 0) is None and hasattr(fp, "read1"):
        return fp
    return None


def raw_body(response: Any) -> Any:
    """The streamed response's body as urllib3 decodes it (`read`, `read1`)."""
    return response.raw


def cancel_stream(response: Any) -> None:
    """Unblock a reader of a streamed response: shut the socket under it down and close it, as docker-py's
    own CancellableStream does (closing the response alone leaves a blocking read waiting)."""
    from docker.types.daemon import CancellableStream

    with contextlib.suppress(OSError):
        CancellableStream(iter(()), response).close()


# ---- image builds --------------------------------------------------------------------------------


def build_proxy_args(client: Any) -> dict[str, str]:
    """The proxy build arguments of the client's configuration, which docker-py's own build adds."""
    return dict(client.api._proxy_configs.get_environment())


def start_build(client: Any, *, context: bytes, params: dict[str, Any]) -> Any:
    """`POST /build` with a tar context, streamed, with no client-side timeout (a deadline hangs up
    instead, see `hangup_for`). An error status raises docker-py's APIError."""
    api = client.api
    response = api._post(api._url("/build"), data=context, params=params,
                         headers={"Content-Type": "application/tar"}, stream=True, timeout=None)  # fmt: skip
    api._raise_for_status(response)
    return response


def build_events(client: Any, response: Any) -> Iterator[dict[str, Any]]:
    """The build stream's JSON messages, decoded, as they come."""
    events: Iterator[dict[str, Any]] = client.api._stream_helper(response, decode=True)
    return events


def hangup_for(response: Any) -> Callable[[], None]:
    """A function that wakes a reader blocked on this streamed response, callable from another thread.

    The socket is found now, while the response is whole: shutting it down wakes the reader (closing it
    does not); without a plain socket under it, the response is closed instead."""
    sock = _socket_of(response)

    def hang_up() -> None:
        try:
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
                return
        except OSError:
            pass
        response.close()

    return hang_up


def _socket_of(response: Any) -> socket.socket | None:
    """The connection under a streamed response (as docker-py's attach finds it)."""
    try:
        sock = response.raw._fp.fp.raw._sock
    except AttributeError:
        return None
    return sock if isinstance(sock, socket.socket) else None
