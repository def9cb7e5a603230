"""Headless Chromium as the scripts here run it: the one command line, in one place.

Chromium runs as root without its sandbox, with a fresh profile, and without the
background connections that a closed network refuses (NOTES of this project); pages get
`budget_ms` of virtual time, so their timers run as fast as the work allows, and their
DOM is printed when it is spent (--dump-dom).
"""

import os
import shutil


def executable():
    """$CHROMIUM, else Debian's chromium on PATH; None when neither is there."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom_command(url, profile, budget_ms, extra=()):
    """The command that prints `url`'s DOM after `budget_ms` of virtual time."""
    return [executable() or "chromium", "--headless", "--no-sandbox", "--disable-gpu",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", *extra, f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}", "--dump-dom", url]
