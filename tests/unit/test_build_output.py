"""Build output as log lines, and which log lines the timeline reads as stages (pure parts)."""

from __future__ import annotations

import pytest

from deployer.lifecycle.images import BuildLimits, OutputLines, failure_message
from deployer.store.loglines import OUTPUT_MARK, quoted, status_of, status_text
from deployer.store.states import Status


def test_build_output_split_anywhere_comes_out_as_whole_lines() -> None:
    lines = OutputLines()
    assert lines.feed("Step 3/7 : RUN pip install .") == []  # Docker sends a step and its newline apart
    assert lines.feed("\n ---> Running in 0123456789ab\nCollecting hum") == [
        "Step 3/7 : RUN pip install .", " ---> Running in 0123456789ab"
    ]  # fmt: skip
    assert lines.feed("anize\n") == ["Collecting humanize"]
    assert lines.feed("no newline at the end") == []
    assert lines.flush() == ["no newline at the end"]


def test_docker_colouring_of_stderr_and_terminal_controls_are_taken_out_of_build_output() -> None:
    lines = OutputLines()
    assert lines.feed("\x1b[91mls: cannot access '/x'\x1b[0m") == []
    assert lines.feed("\x1b[91m\n\x1b[0m") == ["ls: cannot access '/x'"]
    assert lines.feed("\x1b]0;title\x07hello\x1b[2K\n") == ["hello"]


def test_a_carriage_return_keeps_what_a_terminal_would_show_and_blank_lines_are_dropped() -> None:
    assert OutputLines().feed("10%\r50%\r100%\r\n\n   \nnext\n") == ["100%", "next"]


def test_a_build_that_never_prints_a_newline_still_gives_lines_of_bounded_size() -> None:
    lines = OutputLines()
    out = lines.feed("x" * 70_000)
    assert out == ["x" * 70_000] and lines.rest == ""


def test_build_limits_become_the_classic_builders_memory_swap_and_cpu_quota() -> None:
    assert BuildLimits(2048, 1500, 900).params() == {
        "memory": 2048 << 20, "memswap": 2048 << 20, "cpuperiod": 100_000, "cpuquota": 150_000
    }  # fmt: skip
    assert BuildLimits().params() == {}


def test_a_build_failure_message_quotes_the_output_it_ends_with() -> None:
    message = failure_message("returned a non-zero code: 1", ["status: running", "boom"])
    assert message.splitlines() == ["Image build failed: returned a non-zero code: 1", "| status: running", "| boom"]
    assert failure_message("x", ["a"], lead="Image build exceeded its deadline").startswith("Image build exceeded")


@pytest.mark.parametrize("status", list(Status))
def test_the_status_line_a_transition_writes_is_read_back_as_that_status(status: Status) -> None:
    assert status_of("system", status_text(status)) == status
    assert status_of("system", status_text(status, "why\nand more")) == status
    assert status_text(status, "why\nand more") == f"status: {status} — why"


@pytest.mark.parametrize(
    ("stream", "text"),
    [
        ("stdout", "status: running"),  # a container's own output
        ("stderr", "status: running"),
        ("system", quoted("status: running")),  # build output, or a crash's last lines
        ("system", "status: runningish"),
        ("system", "status: pwned"),  # no such status
        ("system", " status: running"),
        ("system", "Status: running"),
    ],
)
def test_output_never_reads_as_a_stage(stream: str, text: str) -> None:
    assert status_of(stream, text) is None


def test_quoted_output_starts_with_the_output_mark() -> None:
    assert quoted("x") == OUTPUT_MARK + "x" == "| x"
