"""The watcher process (`deployer watch`, one per Docker host): crashes, log tailers, restart policy.

`main` wires it up; `loop` runs the Docker event stream, the tailers and the once-a-second checks.
Pure halves: `events` (what a container event means), `restarts` (whether a backoff has passed),
`frames` (Docker's log stream as lines, each once), `chunked` (HTTP chunked decoding) and `logbudget`.
Threads and I/O: `tailer` (one container's output into the database).
"""
