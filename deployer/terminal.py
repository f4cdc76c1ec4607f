"""Text that came from a deployment, made safe to show in a terminal: no escape sequence, no control
character but tab. A container or a build must not be able to move the cursor, retitle the window,
write to the clipboard (OSC 52), hide what it printed or overwrite the lines around it."""

from __future__ import annotations

import re

_CONTROLS = re.compile(
    r"""
      \x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?      # OSC (title, hyperlink, clipboard) … BEL or ST
    | \x1b[P^_X][^\x1b\x9c]*(?:\x1b\\|\x9c)?           # DCS, PM, APC, SOS … ST
    | \x1b\[[0-?]*[\x20-/]*[@-~]?                      # CSI (colours, cursor movement, erasing)
    | \x1b[\x20-/]*[0-~]?                              # any other escape (charset, keypad, reset)
    | \x9b[0-?]*[\x20-/]*[@-~]?                        # 8-bit CSI
    | [\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x9c)?  # 8-bit DCS, SOS, OSC, PM, APC … ST
    | [\x00-\x08\x0a-\x1f\x7f-\x9f]                    # every other C0 control but tab, DEL, C1
    """,
    re.VERBOSE,
)


def strip_controls(text: str) -> str:
    """`text` without terminal escape sequences and control characters (tab kept)."""
    return _CONTROLS.sub("", text)
