"""The CLI prints what containers and builds wrote without letting them drive the user's terminal."""

from __future__ import annotations

from typing import Any

import click
import pytest
from click.testing import CliRunner

from cli.follow import echo_line, follow
from deployer.terminal import strip_controls

HOSTILE = [
    ("\x1b[31mred\x1b[0m", "red"),  # colours
    ("\x1b[2J\x1b[Hwiped", "wiped"),  # clear the screen, cursor home
    ("a\x1b[1A\x1b[2Kb", "ab"),  # cursor up, erase the line above
    ("\x1b]0;owned\x07title", "title"),  # window title, BEL-terminated
    ("\x1b]52;c;ZWNobyBwd25lZA==\x1b\\clip", "clip"),  # clipboard write, ST-terminated
    ("\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\", "link"),  # hyperlink
    ("\x1bPq#0;2;0;0;0\x1b\\sixel", "sixel"),  # DCS
    ("\x1b(0charset\x1b(B", "charset"),  # charset switch
    ("\x1bcreset", "reset"),  # full terminal reset
    ("\x9b2Jc1", "c1"),  # 8-bit CSI
    ("\x9d0;title\x9cosc8", "osc8"),  # 8-bit OSC … ST
    ("over\rwritten", "overwritten"),  # carriage return: may not overwrite what the CLI printed first
    ("back\x08space\x7f", "backspace"),
    ("bell\x07 nul\x00 vt\x0b ff\x0c", "bell nul vt ff"),
    ("\x1b]0;never terminated", ""),
    ("dangling escape\x1b", "dangling escape"),
]


@pytest.mark.parametrize(("raw", "clean"), HOSTILE)
def test_terminal_escape_sequences_and_control_characters_are_stripped(raw: str, clean: str) -> None:
    assert strip_controls(raw) == clean


def test_tabs_and_printable_unicode_are_kept() -> None:
    assert strip_controls("col1\tcol2 — héllo ✓ 日本") == "col1\tcol2 — héllo ✓ 日本"


def _printed(line: dict[str, object], **kw: Any) -> str:
    @click.command()
    def show() -> None:
        echo_line(line, **kw)

    return CliRunner().invoke(show, color=False).output


def test_a_printed_log_line_carries_no_escape_sequence_from_the_container() -> None:
    out = _printed({"stream": "stdout", "text": "\x1b]0;pwned\x07\x1b[2Jhello\x1b[8m hidden", "line_no": 1})
    assert out == "stdout hello hidden\n"


def test_a_multi_line_system_text_prints_its_later_lines_indented_under_the_first() -> None:
    out = _printed({"stream": "system", "text": "Image build failed\nstatus: running", "line_no": 3})
    assert out == "system Image build failed\n       status: running\n"
    out = _printed({"stream": "system", "text": "a\nb", "line_no": 3, "ts": "2025-01-02T03:04:05.678901"},
                   timestamps=True)  # fmt: skip
    assert out.splitlines() == ["2025-01-02 03:04:05.678 system a", " " * 31 + "b"]


class FakeClient:
    def __init__(self, lines: list[dict[str, object]]) -> None:
        self.lines = lines

    def logs(self, deployment_id: str, *, after: int, limit: int) -> list[dict[str, object]]:
        return [ln for ln in self.lines if int(str(ln["line_no"])) > after][:limit]

    def get(self, deployment_id: str) -> dict[str, object]:
        return {"status": "failed"}


def test_following_a_deployment_strips_the_escapes_its_output_holds() -> None:
    client = FakeClient([{"stream": "stderr", "text": "\x1b[1A\x1b[2K\rsystem status: running", "line_no": 1}])

    @click.command()
    def run() -> None:
        follow(client, "dep", sleep=lambda _: None)  # type: ignore[arg-type]

    result = CliRunner().invoke(run, color=True)
    assert "\x1b[1A" not in result.output and "\r" not in result.output and "\x1b[2K" not in result.output
    assert click.unstyle(result.output) == "stderr system status: running\n"
