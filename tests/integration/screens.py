"""Screenshots for the README, taken by the browser tests only when asked, so an ordinary run leaves
the work tree clean: `DEPLOYER_SCREENSHOTS=1 python -m pytest tests/integration/test_browser.py …`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

SHOTS = Path(__file__).parents[2] / "docs" / "screenshots"


def wanted() -> bool:
    return os.environ.get("DEPLOYER_SCREENSHOTS", "").lower() in ("1", "true", "yes")


def shoot(page: Any, name: str) -> None:
    """Saves docs/screenshots/<name>.png when DEPLOYER_SCREENSHOTS asks for it; otherwise nothing."""
    if wanted():
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
