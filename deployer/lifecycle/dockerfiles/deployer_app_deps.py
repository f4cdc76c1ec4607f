"""Puts a deployment's own packages ahead of the base's (imported by deployer_app_deps.pth in the base).

An app image installs its requirements with `pip install --prefix /opt/app-deps` in a build stage and
copies only that tree: the base's virtualenv (the Zynd SDK, ~180 MB) is never copied per deployment.
pip skips what the base already has; a newer version it installs shadows the base's copy, because its
site directory goes right before the base's in sys.path (its own .pth files processed too).
"""

import glob
import os
import site
import sys


def _install() -> None:
    found = glob.glob("/opt/app-deps/lib/python*/site-packages")
    if not found:
        return
    before = list(sys.path)
    for directory in found:
        site.addsitedir(directory)
    added = [p for p in sys.path if p not in before]
    rest = [p for p in sys.path if p not in added]
    here = os.path.dirname(os.path.abspath(__file__))
    at = rest.index(here) if here in rest else len(rest)
    sys.path[:] = rest[:at] + added + rest[at:]


_install()
